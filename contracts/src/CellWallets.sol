// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {ICellRegistry} from "./interfaces/ICellRegistry.sol";
import {ICellWallets} from "./interfaces/ICellWallets.sol";

/// @title CellWallets
/// @notice Per-cell wallets of one plain ERC-20 settlement token. See {ICellWallets}.
/// @dev The token must move exactly the amounts asked (no fee on transfer, no rebasing):
/// the conservation invariant counts on it. Every cell balance change goes through
/// {_setBalance}.
contract CellWallets is ICellWallets {
    using SafeERC20 for IERC20;

    struct Balance {
        uint128 available;
        uint128 locked;
    }

    struct Spend {
        uint96 cap;
        uint96 spentToday;
        uint32 day;
    }

    IERC20 public immutable token;
    ICellRegistry public immutable registry;
    address public admin;

    mapping(uint256 cellId => Balance) private _balances;
    mapping(uint256 cellId => Spend) private _spends;
    mapping(address market => bool) private _markets;
    mapping(address market => uint256) private _marketBalances;

    constructor(IERC20 token_, ICellRegistry registry_, address admin_) {
        token = token_;
        registry = registry_;
        admin = admin_;
    }

    modifier onlyMarket() {
        if (!_markets[msg.sender]) revert WalletNotMarket(msg.sender);
        _;
    }

    /// @notice Authorises a market contract to move money. Admin only; markets cannot be
    /// removed, so renounce the admin once the deployment is complete.
    function addMarket(address market) external {
        if (msg.sender != admin) revert WalletNotAdmin(msg.sender);
        _markets[market] = true;
        emit MarketAdded(market);
    }

    /// @notice Gives up the right to add markets, for good.
    function renounceAdmin() external {
        if (msg.sender != admin) revert WalletNotAdmin(msg.sender);
        emit AdminRenounced(admin);
        admin = address(0);
    }

    /// @inheritdoc ICellWallets
    function deposit(uint256 cellId, uint256 amount) public {
        _requireCell(cellId);
        if (amount == 0) revert WalletZeroAmount();
        Balance memory b = _balances[cellId];
        _setBalance(cellId, _add128(b.available, amount), b.locked);
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(cellId, msg.sender, amount);
    }

    /// @inheritdoc ICellWallets
    function depositWithPermit(uint256 cellId, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        // A front-run permit (someone submitted it first) leaves the allowance in place;
        // the deposit then goes ahead on that allowance instead of failing.
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        deposit(cellId, amount);
    }

    /// @inheritdoc ICellWallets
    function withdraw(uint256 cellId, uint256 amount, address to) external {
        _requireOwner(cellId);
        if (amount == 0) revert WalletZeroAmount();
        Balance memory b = _balances[cellId];
        if (b.available < amount) revert WalletInsufficientBalance(cellId, b.available, amount);
        // Checked above: available >= amount.
        unchecked {
            _setBalance(cellId, b.available - uint128(amount), b.locked);
        }
        token.safeTransfer(to, amount);
        emit Withdrawn(cellId, to, amount);
    }

    /// @inheritdoc ICellWallets
    function setDailyCap(uint256 cellId, uint256 cap) external {
        _requireOwner(cellId);
        Spend storage spend = _spends[cellId];
        spend.cap = cap > type(uint96).max ? type(uint96).max : uint96(cap);
        emit DailyCapSet(cellId, cap);
    }

    /// @inheritdoc ICellWallets
    function balanceOf(uint256 cellId) external view returns (uint256 available, uint256 locked) {
        Balance memory b = _balances[cellId];
        return (b.available, b.locked);
    }

    /// @inheritdoc ICellWallets
    function dailySpend(uint256 cellId) external view returns (uint256 cap, uint256 spentToday, uint256 day) {
        Spend memory spend = _spends[cellId];
        uint256 today = block.timestamp / 1 days;
        return (spend.cap, spend.day == today ? spend.spentToday : 0, today);
    }

    /// @inheritdoc ICellWallets
    function marketBalance(address market) external view returns (uint256) {
        return _marketBalances[market];
    }

    /// @inheritdoc ICellWallets
    function isMarket(address market) external view returns (bool) {
        return _markets[market];
    }

    /// @inheritdoc ICellWallets
    function lockForAgent(uint256 cellId, uint256 amount) external onlyMarket {
        Spend memory spend = _spends[cellId];
        uint32 today = uint32(block.timestamp / 1 days);
        uint256 spent = spend.day == today ? spend.spentToday : 0;
        if (spent + amount > spend.cap) revert WalletDailyCapExceeded(cellId, spend.cap, spent, amount);
        // spent + amount <= cap <= type(uint96).max, checked above.
        _spends[cellId] = Spend({cap: spend.cap, spentToday: uint96(spent + amount), day: today});

        Balance memory b = _balances[cellId];
        if (b.available < amount) revert WalletInsufficientBalance(cellId, b.available, amount);
        // available >= amount (checked) and amount <= uint96 max, so locked + amount fits the
        // token supply, which every balance here is part of (uint128 is far above any supply).
        unchecked {
            _setBalance(cellId, b.available - uint128(amount), b.locked + uint128(amount));
        }
    }

    /// @inheritdoc ICellWallets
    function settleLocked(uint256 cellId, uint256 locked, uint256 paid) external onlyMarket {
        Balance memory b = _balances[cellId];
        if (b.locked < locked) revert WalletInsufficientLocked(cellId, b.locked, locked);
        if (paid > locked) revert WalletInsufficientLocked(cellId, locked, paid);
        // locked <= b.locked and paid <= locked, checked above; the refund is part of money
        // already in this contract, so available cannot overflow uint128.
        unchecked {
            _setBalance(cellId, b.available + uint128(locked - paid), b.locked - uint128(locked));
            _marketBalances[msg.sender] += paid;
        }
    }

    /// @inheritdoc ICellWallets
    function payFromMarket(uint256 cellId, uint256 amount) external onlyMarket {
        uint256 held = _marketBalances[msg.sender];
        if (held < amount) revert WalletMarketUnderfunded(msg.sender, held, amount);
        Balance memory b = _balances[cellId];
        // amount <= held, checked; available + amount is money already in this contract.
        unchecked {
            _marketBalances[msg.sender] = held - amount;
            _setBalance(cellId, b.available + uint128(amount), b.locked);
        }
    }

    /// @dev The one place a cell balance changes.
    function _setBalance(uint256 cellId, uint128 available, uint128 locked) private {
        _balances[cellId] = Balance({available: available, locked: locked});
    }

    function _add128(uint128 a, uint256 b) private pure returns (uint128) {
        uint256 sum = uint256(a) + b;
        if (sum > type(uint128).max) revert WalletAmountTooLarge(b);
        return uint128(sum);
    }

    function _requireCell(uint256 cellId) private view {
        if (cellId == 0 || cellId > registry.cellCount()) revert WalletUnknownCell(cellId);
    }

    function _requireOwner(uint256 cellId) private view {
        _requireCell(cellId);
        address owner = IERC721(address(registry)).ownerOf(cellId);
        if (owner != msg.sender) revert WalletNotCellOwner(cellId, msg.sender);
    }
}
