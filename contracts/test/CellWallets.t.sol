// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ICellWallets} from "../src/interfaces/ICellWallets.sol";
import {CellType} from "../src/types/CellTypes.sol";
import {PoolFixture} from "./utils/PoolFixture.sol";

contract CellWalletsTest is PoolFixture {
    bytes32 private constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    /// 2027-01-16 00:00:00 UTC, the first day boundary after the fixture's start time.
    uint256 private constant MIDNIGHT = 1_800_000_000 - (1_800_000_000 % 1 days) + 1 days;

    address private market = address(0x3A2E7);
    uint256 private depositorKey = 0xDE9051;
    address private depositor;
    CellKeys private cell;

    function setUp() public override {
        super.setUp();
        wallets.addMarket(market);
        cell = newCell(CellType.Prosumer, LIMIT_W, LIMIT_W, 0);
        depositor = vm.addr(depositorKey);
        token.faucet(depositor, 50_000e6);
    }

    function _deposit(uint256 amount) private {
        vm.startPrank(depositor);
        token.approve(address(wallets), amount);
        wallets.deposit(cell.id, amount);
        vm.stopPrank();
    }

    function _setCap(uint256 cap) private {
        vm.prank(cell.owner);
        wallets.setDailyCap(cell.id, cap);
    }

    function _permit(uint256 amount, uint256 nonce, uint256 deadline)
        private
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, depositor, address(wallets), amount, nonce, deadline));
        return vm.sign(depositorKey, keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash)));
    }

    /// token.balanceOf(wallets) == sum(available + locked) + sum(marketBalance), for the cells
    /// and markets of these tests.
    function _assertLedger() private view {
        (uint256 a, uint256 l) = wallets.balanceOf(cell.id);
        assertEq(
            token.balanceOf(address(wallets)),
            a + l + wallets.marketBalance(market) + wallets.marketBalance(address(pool)),
            "token balance equals the ledger"
        );
    }

    // deposit

    function test_deposit_creditsAvailableFromAnyone() public {
        vm.prank(depositor);
        token.approve(address(wallets), 7e6);
        vm.expectEmit(address(wallets));
        emit ICellWallets.Deposited(cell.id, depositor, 7e6);
        vm.prank(depositor);
        wallets.deposit(cell.id, 7e6);
        assertEq(available(cell.id), 7e6, "available");
        assertEq(locked(cell.id), 0, "locked");
        assertEq(token.balanceOf(depositor), 50_000e6 - 7e6, "depositor paid");
        assertEq(token.balanceOf(address(wallets)), 7e6, "wallets hold it");
    }

    function test_deposit_revertsWithZeroAmount() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletZeroAmount.selector));
        vm.prank(depositor);
        wallets.deposit(cell.id, 0);
    }

    function test_deposit_revertsWithUnknownCellWhenIdZero() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletUnknownCell.selector, 0));
        vm.prank(depositor);
        wallets.deposit(0, 1);
    }

    function test_deposit_revertsWithUnknownCellWhenIdAboveCount() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletUnknownCell.selector, cell.id + 1));
        vm.prank(depositor);
        wallets.deposit(cell.id + 1, 1);
    }

    function test_deposit_revertsWithAmountTooLargeWhenOverUint128() public {
        uint256 amount = uint256(type(uint128).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletAmountTooLarge.selector, amount));
        vm.prank(depositor);
        wallets.deposit(cell.id, amount);
    }

    function test_deposit_revertsWithInsufficientAllowanceWhenNotApproved() public {
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(wallets), 0, 1e6)
        );
        vm.prank(depositor);
        wallets.deposit(cell.id, 1e6);
    }

    // depositWithPermit

    function test_depositWithPermit_depositsWithoutPriorApproval() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(9e6, 0, deadline);
        vm.expectEmit(address(wallets));
        emit ICellWallets.Deposited(cell.id, depositor, 9e6);
        vm.prank(depositor);
        wallets.depositWithPermit(cell.id, 9e6, deadline, v, r, s);
        assertEq(available(cell.id), 9e6, "deposited");
        assertEq(token.nonces(depositor), 1, "permit used");
        assertEq(token.allowance(depositor, address(wallets)), 0, "allowance spent");
        _assertLedger();
    }

    /// Someone saw the permit in the mempool and submitted it first: the nonce is gone, but
    /// the allowance it created carries the deposit.
    function test_depositWithPermit_depositsWhenPermitFrontRun() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(9e6, 0, deadline);
        vm.prank(stranger);
        token.permit(depositor, address(wallets), 9e6, deadline, v, r, s);
        assertEq(token.allowance(depositor, address(wallets)), 9e6, "front-runner set the allowance");

        vm.prank(depositor);
        wallets.depositWithPermit(cell.id, 9e6, deadline, v, r, s);
        assertEq(available(cell.id), 9e6, "deposited on the existing allowance");
        assertEq(token.nonces(depositor), 1, "nonce used once");
        assertEq(token.balanceOf(depositor), 50_000e6 - 9e6, "depositor paid once");
    }

    function test_depositWithPermit_revertsWithInsufficientAllowanceWhenPermitInvalid() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(9e6, 5, deadline); // wrong nonce
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(wallets), 0, 9e6)
        );
        vm.prank(depositor);
        wallets.depositWithPermit(cell.id, 9e6, deadline, v, r, s);
    }

    function test_depositWithPermit_revertsWithInsufficientAllowanceWhenPermitExpired() public {
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = _permit(9e6, 0, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(wallets), 0, 9e6)
        );
        vm.prank(depositor);
        wallets.depositWithPermit(cell.id, 9e6, deadline, v, r, s);
    }

    /// A permit names its owner; anyone else handing it in deposits from their own balance,
    /// never from the signer's.
    function test_depositWithPermit_revertsWhenSubmittedByAnotherCaller() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(9e6, 0, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(wallets), 0, 9e6)
        );
        vm.prank(stranger);
        wallets.depositWithPermit(cell.id, 9e6, deadline, v, r, s);
        assertEq(token.nonces(depositor), 0, "permit unused");
    }

    // withdraw

    function test_withdraw_paysOwnerAndEmits() public {
        _deposit(10e6);
        vm.expectEmit(address(wallets));
        emit ICellWallets.Withdrawn(cell.id, stranger, 4e6);
        vm.prank(cell.owner);
        wallets.withdraw(cell.id, 4e6, stranger);
        assertEq(available(cell.id), 6e6, "rest stays");
        assertEq(token.balanceOf(stranger), 4e6, "paid to `to`");
        _assertLedger();
    }

    function test_withdraw_revertsWithNotCellOwnerWhenCallerIsAgent() public {
        _deposit(10e6);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletNotCellOwner.selector, cell.id, cell.agent));
        vm.prank(cell.agent);
        wallets.withdraw(cell.id, 1, cell.agent);
    }

    function test_withdraw_revertsWithNotCellOwnerWhenCallerIsDepositor() public {
        _deposit(10e6);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletNotCellOwner.selector, cell.id, depositor));
        vm.prank(depositor);
        wallets.withdraw(cell.id, 1, depositor);
    }

    function test_withdraw_revertsWithUnknownCell() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletUnknownCell.selector, 99));
        vm.prank(cell.owner);
        wallets.withdraw(99, 1, cell.owner);
    }

    function test_withdraw_revertsWithZeroAmount() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletZeroAmount.selector));
        vm.prank(cell.owner);
        wallets.withdraw(cell.id, 0, cell.owner);
    }

    function test_withdraw_revertsWithInsufficientBalanceWhenMoneyLocked() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        vm.prank(market);
        wallets.lockForAgent(cell.id, 3e6);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletInsufficientBalance.selector, cell.id, 7e6, 10e6));
        vm.prank(cell.owner);
        wallets.withdraw(cell.id, 10e6, cell.owner);
    }

    // daily cap

    function test_setDailyCap_setsCapAndEmits() public {
        vm.expectEmit(address(wallets));
        emit ICellWallets.DailyCapSet(cell.id, 5e6);
        _setCap(5e6);
        (uint256 cap, uint256 spent, uint256 day) = wallets.dailySpend(cell.id);
        assertEq(cap, 5e6, "cap");
        assertEq(spent, 0, "nothing spent");
        assertEq(day, block.timestamp / 1 days, "today");
    }

    function test_setDailyCap_revertsWithNotCellOwner() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletNotCellOwner.selector, cell.id, cell.agent));
        vm.prank(cell.agent);
        wallets.setDailyCap(cell.id, 1);
    }

    /// Caps above 2^96 - 1 mean "unlimited"; the event must carry the stored value, which is
    /// what the indexer records.
    function test_setDailyCap_storesAndEmitsAtMostUint96Max() public {
        vm.expectEmit(address(wallets));
        emit ICellWallets.DailyCapSet(cell.id, type(uint96).max);
        _setCap(type(uint256).max);
        (uint256 cap,,) = wallets.dailySpend(cell.id);
        assertEq(cap, type(uint96).max, "clamped to the storage width");
    }

    function test_setDailyCap_keepsTodaysSpendWhenCapChanges() public {
        _deposit(10e6);
        _setCap(5e6);
        vm.prank(market);
        wallets.lockForAgent(cell.id, 4e6);
        _setCap(6e6);
        (uint256 cap, uint256 spent,) = wallets.dailySpend(cell.id);
        assertEq(cap, 6e6, "new cap");
        assertEq(spent, 4e6, "what was spent today stays spent");
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletDailyCapExceeded.selector, cell.id, 6e6, 4e6, 3e6));
        vm.prank(market);
        wallets.lockForAgent(cell.id, 3e6);
    }

    function test_lockForAgent_revertsWithDailyCapExceededWhenCapNeverSet() public {
        _deposit(10e6);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletDailyCapExceeded.selector, cell.id, 0, 0, 1));
        vm.prank(market);
        wallets.lockForAgent(cell.id, 1);
    }

    function test_lockForAgent_revertsWithDailyCapExceeded() public {
        _deposit(10e6);
        _setCap(5e6);
        vm.startPrank(market);
        wallets.lockForAgent(cell.id, 3e6);
        wallets.lockForAgent(cell.id, 2e6);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletDailyCapExceeded.selector, cell.id, 5e6, 5e6, 1));
        wallets.lockForAgent(cell.id, 1);
        vm.stopPrank();
    }

    function test_lockForAgent_resetsSpendAtUtcMidnight() public {
        _deposit(10e6);
        _setCap(4e6);
        vm.warp(MIDNIGHT - 1);
        vm.prank(market);
        wallets.lockForAgent(cell.id, 4e6);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletDailyCapExceeded.selector, cell.id, 4e6, 4e6, 1));
        vm.prank(market);
        wallets.lockForAgent(cell.id, 1);

        vm.warp(MIDNIGHT);
        (uint256 cap, uint256 spent, uint256 day) = wallets.dailySpend(cell.id);
        assertEq(cap, 4e6, "cap unchanged");
        assertEq(spent, 0, "a new UTC day starts with nothing spent");
        assertEq(day, MIDNIGHT / 1 days, "day index");
        vm.prank(market);
        wallets.lockForAgent(cell.id, 4e6);
        (, spent,) = wallets.dailySpend(cell.id);
        assertEq(spent, 4e6, "spent today");
        assertEq(locked(cell.id), 8e6, "both days' locks");
    }

    function test_lockForAgent_movesAvailableToLocked() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        vm.prank(market);
        wallets.lockForAgent(cell.id, 3e6);
        assertEq(available(cell.id), 7e6, "available");
        assertEq(locked(cell.id), 3e6, "locked");
        (, uint256 spent,) = wallets.dailySpend(cell.id);
        assertEq(spent, 3e6, "counted against the cap");
        _assertLedger();
    }

    function test_lockForAgent_revertsWithInsufficientBalance() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        vm.expectRevert(
            abi.encodeWithSelector(ICellWallets.WalletInsufficientBalance.selector, cell.id, 10e6, 10e6 + 1)
        );
        vm.prank(market);
        wallets.lockForAgent(cell.id, 10e6 + 1);
    }

    // market-only operations

    function test_lockForAgent_revertsWithNotMarket() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletNotMarket.selector, cell.agent));
        vm.prank(cell.agent);
        wallets.lockForAgent(cell.id, 1);
    }

    function test_settleLocked_revertsWithNotMarket() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletNotMarket.selector, cell.owner));
        vm.prank(cell.owner);
        wallets.settleLocked(cell.id, 0, 0);
    }

    function test_payFromMarket_revertsWithNotMarket() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletNotMarket.selector, address(this)));
        wallets.payFromMarket(cell.id, 0);
    }

    function test_settleLocked_paysMarketAndRefundsRest() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        vm.startPrank(market);
        wallets.lockForAgent(cell.id, 6e6);
        wallets.settleLocked(cell.id, 5e6, 2e6);
        vm.stopPrank();
        assertEq(available(cell.id), 7e6, "4 + 3 refunded");
        assertEq(locked(cell.id), 1e6, "rest of the lock");
        assertEq(wallets.marketBalance(market), 2e6, "market holds the payment");
        _assertLedger();
    }

    function test_settleLocked_revertsWithInsufficientLockedWhenLockedTooSmall() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        vm.startPrank(market);
        wallets.lockForAgent(cell.id, 6e6);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletInsufficientLocked.selector, cell.id, 6e6, 6e6 + 1));
        wallets.settleLocked(cell.id, 6e6 + 1, 0);
        vm.stopPrank();
    }

    function test_settleLocked_revertsWithInsufficientLockedWhenPaidAboveLocked() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        vm.startPrank(market);
        wallets.lockForAgent(cell.id, 6e6);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletInsufficientLocked.selector, cell.id, 4e6, 5e6));
        wallets.settleLocked(cell.id, 4e6, 5e6);
        vm.stopPrank();
    }

    function test_payFromMarket_creditsCellFromMarketAccount() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        CellKeys memory payee = newCell(CellType.StochasticGenerator, LIMIT_W, LIMIT_W, 0);
        vm.startPrank(market);
        wallets.lockForAgent(cell.id, 6e6);
        wallets.settleLocked(cell.id, 6e6, 6e6);
        wallets.payFromMarket(payee.id, 3e6);
        vm.stopPrank();
        assertEq(available(payee.id), 3e6, "payee credited");
        assertEq(wallets.marketBalance(market), 3e6, "market keeps the rest");
        assertEq(available(cell.id), 4e6, "payer");
        assertEq(locked(cell.id), 0, "payer lock settled");
    }

    function test_payFromMarket_revertsWithMarketUnderfunded() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        vm.startPrank(market);
        wallets.lockForAgent(cell.id, 6e6);
        wallets.settleLocked(cell.id, 6e6, 2e6);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletMarketUnderfunded.selector, market, 2e6, 2e6 + 1));
        wallets.payFromMarket(cell.id, 2e6 + 1);
        vm.stopPrank();
    }

    /// Markets hold separate accounts: one cannot pay out what another holds.
    function test_payFromMarket_revertsWithMarketUnderfundedWhenMoneyBelongsToAnotherMarket() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        vm.startPrank(market);
        wallets.lockForAgent(cell.id, 6e6);
        wallets.settleLocked(cell.id, 6e6, 6e6);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletMarketUnderfunded.selector, address(pool), 0, 1));
        vm.prank(address(pool));
        wallets.payFromMarket(cell.id, 1);
    }

    // admin

    function test_addMarket_authorisesAndEmits() public {
        assertFalse(wallets.isMarket(stranger), "not yet");
        vm.expectEmit(address(wallets));
        emit ICellWallets.MarketAdded(stranger);
        wallets.addMarket(stranger);
        assertTrue(wallets.isMarket(stranger), "market");
        assertTrue(wallets.isMarket(address(pool)), "the fixture's pool");
    }

    function test_addMarket_revertsWithNotAdmin() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletNotAdmin.selector, stranger));
        vm.prank(stranger);
        wallets.addMarket(stranger);
    }

    function test_renounceAdmin_clearsAdminAndEmits() public {
        vm.expectEmit(address(wallets));
        emit ICellWallets.AdminRenounced(address(this));
        wallets.renounceAdmin();
        assertEq(wallets.admin(), address(0), "no admin");
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletNotAdmin.selector, address(this)));
        wallets.addMarket(stranger);
        assertTrue(wallets.isMarket(market), "existing markets stay");
    }

    function test_renounceAdmin_revertsWithNotAdmin() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletNotAdmin.selector, stranger));
        vm.prank(stranger);
        wallets.renounceAdmin();
    }

    // fuzz

    function testFuzz_depositWithdraw_conservesTokens(uint256 amount, uint256 withdrawn) public {
        amount = bound(amount, 1, 50_000e6);
        withdrawn = bound(withdrawn, 1, amount);
        _deposit(amount);
        vm.prank(cell.owner);
        wallets.withdraw(cell.id, withdrawn, cell.owner);
        assertEq(available(cell.id), amount - withdrawn, "wallet keeps the rest");
        assertEq(token.balanceOf(cell.owner), withdrawn, "owner got what was withdrawn");
        assertEq(token.balanceOf(depositor), 50_000e6 - amount, "depositor paid the deposit");
        assertEq(
            token.balanceOf(depositor) + token.balanceOf(cell.owner) + token.balanceOf(address(wallets)),
            50_000e6,
            "no token created or lost"
        );
        _assertLedger();
    }

    function testFuzz_marketOperations_keepLedgerEqualToTokenBalance(
        uint256 deposited,
        uint256 lockAmount,
        uint256 settled,
        uint256 paid,
        uint256 paidOut
    ) public {
        deposited = bound(deposited, 1, 50_000e6);
        lockAmount = bound(lockAmount, 0, deposited);
        settled = bound(settled, 0, lockAmount);
        paid = bound(paid, 0, settled);
        paidOut = bound(paidOut, 0, paid);
        _deposit(deposited);
        _setCap(type(uint256).max);
        vm.startPrank(market);
        wallets.lockForAgent(cell.id, lockAmount);
        wallets.settleLocked(cell.id, settled, paid);
        wallets.payFromMarket(cell.id, paidOut);
        vm.stopPrank();
        assertEq(available(cell.id), deposited - lockAmount + (settled - paid) + paidOut, "available");
        assertEq(locked(cell.id), lockAmount - settled, "locked");
        assertEq(wallets.marketBalance(market), paid - paidOut, "market");
        _assertLedger();
    }

    // debts (ØNDER: what a channel's collateral could not cover)

    function _creditor() private returns (CellKeys memory c) {
        c = newCell(CellType.Prosumer, LIMIT_W, LIMIT_W, 0);
    }

    function test_recordDebt_paysFromAvailableFirstAndRecordsTheRest() public {
        _deposit(3e6);
        CellKeys memory creditor = _creditor();
        vm.expectEmit(address(wallets));
        emit ICellWallets.DebtRecorded(1, cell.id, creditor.id, 5e6, 3e6);
        vm.prank(market);
        uint256 id = wallets.recordDebt(cell.id, creditor.id, 5e6);
        assertEq(id, 1, "first debt");
        assertEq(available(creditor.id), 3e6, "the creditor got what was available");
        assertEq(wallets.debtOf(cell.id), 2e6, "the rest is debt");
        assertEq(available(cell.id), 0, "nothing left");
    }

    function test_recordDebt_returnsZeroWhenAvailableCoversIt() public {
        _deposit(5e6);
        CellKeys memory creditor = _creditor();
        vm.prank(market);
        assertEq(wallets.recordDebt(cell.id, creditor.id, 5e6), 0, "no debt left");
        assertEq(wallets.debtOf(cell.id), 0, "none");
    }

    function test_deposit_repaysDebtsInTheOrderRecorded() public {
        CellKeys memory first = _creditor();
        CellKeys memory second = _creditor();
        vm.startPrank(market);
        uint256 a = wallets.recordDebt(cell.id, first.id, 2e6);
        uint256 b = wallets.recordDebt(cell.id, second.id, 3e6);
        vm.stopPrank();
        _deposit(3e6);
        assertEq(wallets.debtOf(cell.id), 2e6, "3 of 5 repaid");
        assertEq(available(cell.id), 0, "all of the deposit went to the debt");
        assertEq(wallets.heldForCreditors(), 3e6, "held for the creditors");
        assertEq(wallets.collectDebt(a), 2e6, "the first creditor is repaid in full");
        assertEq(wallets.collectDebt(b), 1e6, "the second gets the rest");
        assertEq(wallets.collectDebt(b), 0, "nothing twice");
        _deposit(4e6);
        assertEq(wallets.collectDebt(b), 2e6, "the second creditor is repaid in full");
        assertEq(available(cell.id), 2e6, "the deposit beyond the debt is available");
        assertEq(available(first.id) + available(second.id), 5e6, "both repaid");
        assertEq(wallets.heldForCreditors(), 0, "nothing held");
    }

    function test_debt_blocksWithdrawAndAgentSpending() public {
        CellKeys memory creditor = _creditor();
        vm.prank(market);
        wallets.recordDebt(cell.id, creditor.id, 1e6);
        _setCap(type(uint256).max);
        vm.prank(cell.owner);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletCellInDebt.selector, cell.id, 1e6));
        wallets.withdraw(cell.id, 1, cell.owner);
        vm.prank(market);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletCellInDebt.selector, cell.id, 1e6));
        wallets.lockForAgent(cell.id, 1);
        vm.prank(market);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletCellInDebt.selector, cell.id, 1e6));
        wallets.commitForAgent(cell.id, 1);
    }

    function test_payFromMarket_repaysDebtFirst() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        CellKeys memory creditor = _creditor();
        vm.startPrank(market);
        wallets.commitForAgent(cell.id, 10e6);
        wallets.recordDebt(cell.id, creditor.id, 4e6);
        wallets.payFromMarket(cell.id, 6e6);
        vm.stopPrank();
        assertEq(wallets.debtOf(cell.id), 0, "income repaid the debt");
        assertEq(available(cell.id), 2e6, "the rest is available");
        assertEq(wallets.collectDebt(1), 4e6, "collected");
    }

    function test_payTwoFromMarket_creditsBothAndRepaysDebtFirst() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        CellKeys memory creditor = _creditor();
        CellKeys memory payee = newCell(CellType.StochasticGenerator, LIMIT_W, LIMIT_W, 0);
        vm.startPrank(market);
        wallets.commitForAgent(cell.id, 10e6);
        wallets.recordDebt(cell.id, creditor.id, 1e6);
        wallets.payTwoFromMarket(payee.id, 3e6, cell.id, 5e6);
        vm.stopPrank();
        assertEq(available(payee.id), 3e6, "first payee");
        assertEq(wallets.debtOf(cell.id), 0, "the second payee's debt repaid first");
        assertEq(available(cell.id), 4e6, "the rest of the second payment");
        assertEq(wallets.marketBalance(market), 2e6, "market keeps the rest");
        assertTrue(wallets.isMarket(market), "still a market");
        assertEq(token.balanceOf(address(wallets)), 3e6 + 4e6 + 2e6 + wallets.heldForCreditors(), "ledger");
    }

    function test_payTwoFromMarket_revertsWithMarketUnderfundedForTheSum() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        CellKeys memory payee = newCell(CellType.StochasticGenerator, LIMIT_W, LIMIT_W, 0);
        vm.startPrank(market);
        wallets.commitForAgent(cell.id, 5e6);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletMarketUnderfunded.selector, market, 5e6, 5e6 + 1));
        wallets.payTwoFromMarket(payee.id, 3e6, cell.id, 2e6 + 1);
        vm.stopPrank();
    }

    function test_payTwoFromMarket_revertsWithNotMarket() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletNotMarket.selector, address(this)));
        wallets.payTwoFromMarket(cell.id, 0, cell.id, 0);
    }

    function test_commitForAgent_revertsWithNotMarket() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletNotMarket.selector, address(this)));
        wallets.commitForAgent(cell.id, 0);
    }

    function test_repayDebt_usesMoneyBackFromEscrow() public {
        _deposit(10e6);
        _setCap(type(uint256).max);
        CellKeys memory creditor = _creditor();
        vm.startPrank(market);
        wallets.lockForAgent(cell.id, 10e6);
        wallets.recordDebt(cell.id, creditor.id, 4e6);
        wallets.settleLocked(cell.id, 10e6, 0); // the escrow comes back while the cell owes
        vm.stopPrank();
        assertEq(wallets.debtOf(cell.id), 4e6, "still owed");
        wallets.repayDebt(cell.id);
        assertEq(wallets.debtOf(cell.id), 0, "repaid from available");
        assertEq(available(cell.id), 6e6, "the rest");
    }

    function test_collectDebt_revertsWithUnknownDebt() public {
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletUnknownDebt.selector, 7));
        wallets.collectDebt(7);
    }

    function test_commitForAgent_movesAvailableToMarketWithinCap() public {
        _deposit(10e6);
        _setCap(4e6);
        vm.prank(market);
        wallets.commitForAgent(cell.id, 3e6);
        assertEq(available(cell.id), 7e6, "left the cell");
        assertEq(wallets.marketBalance(market), 3e6, "to the market");
        vm.prank(market);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletDailyCapExceeded.selector, cell.id, 4e6, 3e6, 2e6));
        wallets.commitForAgent(cell.id, 2e6);
        _assertLedger();
    }
}
