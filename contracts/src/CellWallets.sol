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
/// the conservation invariant counts on it. Every change of what a cell holds goes through
/// {_setTotal} (money in, through {_credit}, which repays debt first) and every change of its
/// escrow through {_setEscrow}.
contract CellWallets is ICellWallets {
    using SafeERC20 for IERC20;

    /// @dev Two slots per cell, arranged so that locking escrow for an order, the hot path,
    /// writes only the second: `total` (= available + locked) does not change when money is
    /// locked. `indebted` sits in the slot the hot path reads anyway, so refusing a cell in
    /// debt costs buy orders nothing.
    struct Account {
        uint128 total;
        uint96 dailyCap;
        bool indebted;
    }

    /// @dev A debtor's cumulative recorded and repaid debt; outstanding = recorded - repaid.
    struct Debtor {
        uint128 recorded;
        uint128 repaid;
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

    /// @dev A market's right to move money and its balance share one slot: a market call
    /// reads one slot, and the balance slot is never zero, so filling it costs 2,900 gas, not
    /// 22,100 (EIP-2200).
    struct Market {
        bool allowed;
        uint248 balance;
    }

    mapping(address market => Market) private _markets;
    mapping(uint256 cellId => Debtor) private _debtors;
    mapping(uint256 debtId => Debt) private _debts;
    uint256 private _debtCount;
    uint256 private _heldForCreditors;

    constructor(IERC20 token_, ICellRegistry registry_, address admin_) {
        token = token_;
        registry = registry_;
        admin = admin_;
    }

    modifier onlyMarket() {
        if (!_markets[msg.sender].allowed) revert WalletNotMarket(msg.sender);
        _;
    }

    /// @notice Authorises a market contract to move money. Admin only; markets cannot be
    /// removed, so renounce the admin once the deployment is complete.
    function addMarket(address market) external {
        if (msg.sender != admin) revert WalletNotAdmin(msg.sender);
        _markets[market].allowed = true;
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
        if (amount > type(uint128).max) revert WalletAmountTooLarge(amount);
        _credit(cellId, amount);
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
        if (_accounts[cellId].indebted) revert WalletCellInDebt(cellId, _outstanding(cellId));
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
        uint96 stored = cap > type(uint96).max ? type(uint96).max : uint96(cap);
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
        return _markets[market].balance;
    }

    /// @inheritdoc ICellWallets
    function isMarket(address market) external view returns (bool) {
        return _markets[market].allowed;
    }

    /// @inheritdoc ICellWallets
    function lockForAgent(uint256 cellId, uint256 amount) external onlyMarket {
        Account storage accountRef = _accounts[cellId];
        uint256 account;
        assembly ("memory-safe") {
            account := sload(accountRef.slot)
        }
        _spendForAgent(cellId, account, amount, true);
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
            _markets[msg.sender].balance += uint248(paid);
        }
    }

    /// @inheritdoc ICellWallets
    function payFromMarket(uint256 cellId, uint256 amount) external {
        _takeFromMarket(amount);
        _credit(cellId, amount);
    }

    /// @inheritdoc ICellWallets
    function payTwoFromMarket(uint256 cellA, uint256 amountA, uint256 cellB, uint256 amountB) external {
        _takeFromMarket(amountA + amountB);
        if (amountA > 0) _credit(cellA, amountA);
        if (amountB > 0) _credit(cellB, amountB);
    }

    /// @inheritdoc ICellWallets
    function commitForAgent(uint256 cellId, uint256 amount) external {
        // The market's slot is read once, for the right and the balance (layout as in
        // {_takeFromMarket}).
        Market storage marketRef = _markets[msg.sender];
        uint256 market;
        assembly ("memory-safe") {
            market := sload(marketRef.slot)
        }
        if (market & 0xff == 0) revert WalletNotMarket(msg.sender);
        Account storage accountRef = _accounts[cellId];
        uint256 account;
        assembly ("memory-safe") {
            account := sload(accountRef.slot)
        }
        uint256 total = uint128(account);
        _spendForAgent(cellId, account, amount, false);
        // amount <= available <= total, checked by _spendForAgent; the market's balance is
        // part of the tokens this contract holds, far below 2^248, so adding the shifted
        // amount leaves the `allowed` byte as it is.
        unchecked {
            _setTotal(accountRef, account, uint128(total - amount));
            market += amount << 8;
        }
        assembly ("memory-safe") {
            sstore(marketRef.slot, market)
        }
    }

    /// @inheritdoc ICellWallets
    function recordDebt(uint256 debtor, uint256 creditor, uint256 amount) external onlyMarket returns (uint256 debtId) {
        if (amount > type(uint128).max) revert WalletAmountTooLarge(amount);
        uint128 total = _accounts[debtor].total;
        uint256 free = total - _escrows[debtor].locked;
        uint256 paidAtOnce = free < amount ? free : amount;
        // paidAtOnce <= available <= total; amount < 2^128, checked.
        unchecked {
            if (paidAtOnce > 0) {
                _setTotal(debtor, total - uint128(paidAtOnce));
                _credit(creditor, paidAtOnce);
            }
            uint128 rest = uint128(amount - paidAtOnce);
            if (rest > 0) {
                Debtor storage d = _debtors[debtor];
                uint128 start = d.recorded;
                d.recorded = _add128(start, rest);
                debtId = ++_debtCount;
                _debts[debtId] =
                    Debt({debtor: debtor, creditor: creditor, start: start, end: start + rest, collected: 0});
                _accounts[debtor].indebted = true;
            }
        }
        emit DebtRecorded(debtId, debtor, creditor, amount, paidAtOnce);
    }

    /// @inheritdoc ICellWallets
    function repayDebt(uint256 cellId) external {
        uint128 total = _accounts[cellId].total;
        uint256 free = total - _escrows[cellId].locked;
        uint256 repaid = _repay(cellId, free);
        // repaid <= available <= total.
        unchecked {
            _setTotal(cellId, total - uint128(repaid));
        }
    }

    /// @inheritdoc ICellWallets
    function collectDebt(uint256 debtId) external returns (uint256 amount) {
        Debt storage debt = _debts[debtId];
        if (debt.end == 0) revert WalletUnknownDebt(debtId);
        amount = _collectable(debt);
        if (amount == 0) return 0;
        // amount <= what was repaid of this debt's range and not yet collected, which is part
        // of what is held for creditors.
        unchecked {
            debt.collected += uint128(amount);
            _heldForCreditors -= amount;
        }
        uint256 creditor = debt.creditor;
        emit DebtCollected(debtId, creditor, amount);
        _credit(creditor, amount);
    }

    /// @inheritdoc ICellWallets
    function debtOf(uint256 cellId) external view returns (uint256) {
        return _outstanding(cellId);
    }

    /// @inheritdoc ICellWallets
    function debtById(uint256 debtId) external view returns (Debt memory debt, uint256 collectable) {
        debt = _debts[debtId];
        collectable = debt.end == 0 ? 0 : _collectable(debt);
    }

    /// @inheritdoc ICellWallets
    function heldForCreditors() external view returns (uint256) {
        return _heldForCreditors;
    }

    /// @dev The agent commits `amount` of the cell's available money: refused while the cell
    /// owes, beyond the owner's daily cap or beyond what is available. Counts it against the
    /// cap and, if `lock`, moves it to locked. The hot path of every buy order: it reads the
    /// escrow slot once and writes it once (the code generator would otherwise load and store
    /// packed structs field by field). Layouts are Solidity's own for {Account} and {Escrow}.
    function _spendForAgent(uint256 cellId, uint256 account, uint256 amount, bool lock) private {
        Escrow storage escrowRef = _escrows[cellId];
        uint256 escrow;
        assembly ("memory-safe") {
            escrow := sload(escrowRef.slot)
        }
        uint256 total = uint128(account);
        uint256 cap = uint96(account >> 128);
        if (account >> 224 != 0) revert WalletCellInDebt(cellId, _outstanding(cellId));
        uint256 lockedNow = uint128(escrow);
        uint32 today = uint32(block.timestamp / 1 days);
        uint256 spent = uint32(escrow >> 224) == today ? uint96(escrow >> 128) : 0;
        if (spent + amount > cap) revert WalletDailyCapExceeded(cellId, cap, spent, amount);
        if (total - lockedNow < amount) revert WalletInsufficientBalance(cellId, total - lockedNow, amount);
        // spent + amount <= cap <= uint96 max (setDailyCap clamps it) and
        // locked + amount <= total < 2^128: both checked above, so the fields cannot spill.
        escrow = (lock ? lockedNow + amount : lockedNow) | ((spent + amount) << 128) | (uint256(today) << 224);
        assembly ("memory-safe") {
            sstore(escrowRef.slot, escrow)
        }
    }

    /// @dev Takes `amount` out of the calling market's account, refusing a caller that is no
    /// market. One read and one write of the slot (Solidity's layout for {Market}: `allowed`
    /// in the low byte, `balance` above it), where the modifier and the field accesses would
    /// read it three times.
    function _takeFromMarket(uint256 amount) private {
        Market storage ref = _markets[msg.sender];
        uint256 word;
        assembly ("memory-safe") {
            word := sload(ref.slot)
        }
        if (word & 0xff == 0) revert WalletNotMarket(msg.sender);
        uint256 held = word >> 8;
        if (held < amount) revert WalletMarketUnderfunded(msg.sender, held, amount);
        // amount <= held < 2^248, checked: the shifted amount fits and the subtraction leaves
        // the `allowed` byte as it is.
        unchecked {
            word -= amount << 8;
        }
        assembly ("memory-safe") {
            sstore(ref.slot, word)
        }
    }

    /// @dev Money coming into a cell: repays its debt first, the rest to its balance.
    function _credit(uint256 cellId, uint256 amount) private {
        // Every market payment comes here: one SLOAD of the account (Solidity's layout for
        // {Account}), not one per field.
        Account storage ref = _accounts[cellId];
        uint256 account;
        assembly ("memory-safe") {
            account := sload(ref.slot)
        }
        if (account >> 224 == 0) {
            _setTotal(ref, account, _add128(uint128(account), amount));
            return;
        }
        uint256 repaid = _repay(cellId, amount);
        // repaid <= amount. _repay may have cleared `indebted`, so the account is read again.
        unchecked {
            _setTotal(cellId, _add128(uint128(account), amount - repaid));
        }
    }

    /// @dev Repays up to `amount` of the cell's debt, into the money held for its creditors.
    /// The caller takes the returned amount out of wherever it came from.
    function _repay(uint256 cellId, uint256 amount) private returns (uint256 repaid) {
        Debtor memory d = _debtors[cellId];
        // repaid <= recorded always (repaid only grows by at most the outstanding).
        unchecked {
            uint256 outstanding = d.recorded - d.repaid;
            repaid = amount < outstanding ? amount : outstanding;
            if (repaid == 0) return 0;
            _debtors[cellId].repaid = d.repaid + uint128(repaid);
            _heldForCreditors += repaid;
            if (repaid == outstanding) _accounts[cellId].indebted = false;
            emit DebtRepaid(cellId, repaid, outstanding - repaid);
        }
    }

    function _outstanding(uint256 cellId) private view returns (uint256) {
        Debtor memory d = _debtors[cellId];
        return d.recorded - d.repaid;
    }

    /// @dev What has been repaid of the debt's range [start, end) and not yet collected.
    function _collectable(Debt memory debt) private view returns (uint256) {
        uint256 repaid = _debtors[debt.debtor].repaid;
        uint256 upTo = repaid < debt.end ? repaid : debt.end;
        uint256 done = uint256(debt.start) + debt.collected;
        return upTo > done ? upTo - done : 0;
    }

    /// @dev One of the two places a cell balance changes: what the cell holds in all.
    function _setTotal(uint256 cellId, uint128 total) private {
        Account storage ref = _accounts[cellId];
        uint256 account;
        assembly ("memory-safe") {
            account := sload(ref.slot)
        }
        _setTotal(ref, account, total);
    }

    /// @dev {_setTotal} for a caller that holds the account's current word (it saves reading
    /// the slot again): `total` is the low 128 bits of Solidity's layout for {Account}, and
    /// the other fields are written back as they are.
    function _setTotal(Account storage ref, uint256 account, uint128 total) private {
        assembly ("memory-safe") {
            sstore(ref.slot, or(and(account, not(0xffffffffffffffffffffffffffffffff)), total))
        }
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
