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

    /// @dev Two slots per cell, arranged so that locking escrow for an order, the hot path,
    /// writes only the second: `total` (= available + locked) does not change when money is
    /// locked.
    struct Account {
        uint128 total;
        uint128 dailyCap;
    }

    struct Escrow {
        uint128 locked;
        uint96 spentToday;
        uint32 day;
    }

    IERC20 public immutable token;
    ICellRegistry public immutable registry;
    address public admin;

    mapping(uint256 cellId => Account) private _accounts;
    mapping(uint256 cellId => Escrow) private _escrows;
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
        _setTotal(cellId, _add128(_accounts[cellId].total, amount));
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
        uint128 total = _accounts[cellId].total;
        uint256 free = total - _escrows[cellId].locked;
        if (free < amount) revert WalletInsufficientBalance(cellId, free, amount);
        // Checked above: amount <= available <= total.
        unchecked {
            _setTotal(cellId, total - uint128(amount));
        }
        token.safeTransfer(to, amount);
        emit Withdrawn(cellId, to, amount);
    }

    /// @inheritdoc ICellWallets
    function setDailyCap(uint256 cellId, uint256 cap) external {
        _requireOwner(cellId);
        // Caps above 2^96 - 1 mean "unlimited" and are stored as 2^96 - 1, which keeps the
        // spending counter in its 96 bits; the event reports what was stored.
        uint128 stored = cap > type(uint96).max ? type(uint96).max : uint128(cap);
        _accounts[cellId].dailyCap = stored;
        // Roll the spending record to today (what was spent today stays spent). Besides, this
        // makes the escrow slot non-zero before the agent's first order, so that order pays
        // 2,900 gas to write it rather than 22,100 (EIP-2200 / EIP-2929 pricing).
        Escrow memory e = _escrows[cellId];
        uint32 today = uint32(block.timestamp / 1 days);
        if (e.day != today) _setEscrow(cellId, Escrow({locked: e.locked, spentToday: 0, day: today}));
        emit DailyCapSet(cellId, stored);
    }

    /// @inheritdoc ICellWallets
    function balanceOf(uint256 cellId) external view returns (uint256 available, uint256 locked) {
        uint256 total = _accounts[cellId].total;
        locked = _escrows[cellId].locked;
        available = total - locked;
    }

    /// @inheritdoc ICellWallets
    function dailySpend(uint256 cellId) external view returns (uint256 cap, uint256 spentToday, uint256 day) {
        Escrow memory e = _escrows[cellId];
        uint256 today = block.timestamp / 1 days;
        return (_accounts[cellId].dailyCap, e.day == today ? e.spentToday : 0, today);
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
        // The hot path of every buy order: read each slot once and write the escrow slot
        // once (the code generator would otherwise load and store packed structs field by
        // field). Layouts are Solidity's own for {Account} and {Escrow}.
        Account storage accountRef = _accounts[cellId];
        Escrow storage escrowRef = _escrows[cellId];
        uint256 account;
        uint256 escrow;
        assembly ("memory-safe") {
            account := sload(accountRef.slot)
            escrow := sload(escrowRef.slot)
        }
        uint256 total = uint128(account);
        uint256 cap = account >> 128;
        uint256 lockedNow = uint128(escrow);
        uint32 today = uint32(block.timestamp / 1 days);
        uint256 spent = uint32(escrow >> 224) == today ? uint96(escrow >> 128) : 0;
        if (spent + amount > cap) revert WalletDailyCapExceeded(cellId, cap, spent, amount);
        if (total - lockedNow < amount) revert WalletInsufficientBalance(cellId, total - lockedNow, amount);
        // spent + amount <= cap <= uint96 max (setDailyCap clamps it) and
        // locked + amount <= total < 2^128: both checked above, so the fields cannot spill.
        escrow = (lockedNow + amount) | ((spent + amount) << 128) | (uint256(today) << 224);
        assembly ("memory-safe") {
            sstore(escrowRef.slot, escrow)
        }
    }

    /// @inheritdoc ICellWallets
    function settleLocked(uint256 cellId, uint256 locked, uint256 paid) external onlyMarket {
        Escrow memory e = _escrows[cellId];
        if (e.locked < locked) revert WalletInsufficientLocked(cellId, e.locked, locked);
        if (paid > locked) revert WalletInsufficientLocked(cellId, locked, paid);
        // paid <= locked <= e.locked <= total, checked above; the market's balance is part of
        // the tokens this contract holds, so it cannot overflow.
        unchecked {
            e.locked -= uint128(locked);
            _setEscrow(cellId, e);
            _setTotal(cellId, _accounts[cellId].total - uint128(paid));
            _marketBalances[msg.sender] += paid;
        }
    }

    /// @inheritdoc ICellWallets
    function payFromMarket(uint256 cellId, uint256 amount) external onlyMarket {
        uint256 held = _marketBalances[msg.sender];
        if (held < amount) revert WalletMarketUnderfunded(msg.sender, held, amount);
        // amount <= held, checked; total + amount is money already in this contract.
        unchecked {
            _marketBalances[msg.sender] = held - amount;
            _setTotal(cellId, _accounts[cellId].total + uint128(amount));
        }
    }

    /// @dev One of the two places a cell balance changes: what the cell holds in all.
    function _setTotal(uint256 cellId, uint128 total) private {
        _accounts[cellId].total = total;
    }

    /// @dev The other: what of it is locked, and the agent's spending today.
    function _setEscrow(uint256 cellId, Escrow memory e) private {
        _escrows[cellId] = e;
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
