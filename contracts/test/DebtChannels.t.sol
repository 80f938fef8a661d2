// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {DebtChannels} from "../src/DebtChannels.sol";
import {ICellWallets} from "../src/interfaces/ICellWallets.sol";
import {IClearingPool} from "../src/interfaces/IClearingPool.sol";
import {IDebtChannels} from "../src/interfaces/IDebtChannels.sol";
import {CellType, Side} from "../src/types/CellTypes.sol";
import {ChannelFixture} from "./utils/ChannelFixture.sol";

contract DebtChannelsTest is ChannelFixture {
    uint256 private constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    // ---- open ----

    function test_open_movesCollateralAndBooksMeter() public {
        DealKeys memory k = openStandard();
        assertEq(available(k.buyer.id), FUNDS - COLLATERAL, "collateral left the buyer's wallet");
        assertEq(wallets.marketBalance(address(channels)), COLLATERAL, "channels hold it");
        IDebtChannels.Channel memory ch = state(k);
        assertEq(uint256(ch.status), uint256(IDebtChannels.Status.Open), "open");
        assertEq(ch.collateral, COLLATERAL, "collateral");
        assertEq(channels.bookedThrough(k.seller.meter), k.deal.lastInterval, "meter booked");
    }

    function test_open_revertsWithExistsWhenReplayed() public {
        DealKeys memory k = openStandard();
        (bytes memory b, bytes memory s) = signDeal(k);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelExists.selector, k.id));
        channels.open(k.deal, b, s);
    }

    function test_open_revertsWithNotAgentWhenSellerSignatureMissing() public {
        DealKeys memory k = standardDeal();
        bytes32 digest = channels.channelId(k.deal);
        bytes memory b = signDigest(k.buyer.agentKey, digest);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelNotAgent.selector, k.seller.id, k.buyer.agent));
        channels.open(k.deal, b, b);
    }

    function test_open_takesTheSendingAgentsConsentForAnEmptySignature() public {
        DealKeys memory k = standardDeal();
        (bytes memory b,) = signDeal(k);
        vm.prank(k.seller.agent);
        bytes32 id = channels.open(k.deal, b, "");
        k.id = id;
        assertEq(uint256(state(k).status), uint256(IDebtChannels.Status.Open), "opened");
    }

    function test_open_revertsWithNotAgentWhenEmptySignatureSentByAnyoneElse() public {
        DealKeys memory k = standardDeal();
        (bytes memory b, bytes memory s) = signDeal(k);
        // A stranger, the cell's owner (not its agent) and the other party's agent: none of
        // them stands for the seller's agent.
        address[3] memory callers = [stranger, k.seller.owner, k.buyer.agent];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelNotAgent.selector, k.seller.id, callers[i]));
            channels.open(k.deal, b, "");
        }
        vm.prank(k.seller.agent);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelNotAgent.selector, k.buyer.id, k.seller.agent));
        channels.open(k.deal, "", s);
    }

    function test_open_revertsWithBadTermsWhenAFieldHasDirtyBits() public {
        DealKeys memory k = standardDeal();
        (bytes memory b, bytes memory s) = signDeal(k);
        bytes memory data = abi.encodeCall(channels.open, (k.deal, b, s));
        // maxWhPerInterval is the deal's fifth word, after the 4-byte selector.
        uint256 at = 4 + 4 * 32;
        data[at + 23] = 0x01; // bit 64 of the word: beyond uint64
        (bool ok, bytes memory reason) = address(channels).call(data);
        assertFalse(ok, "refused");
        assertEq(
            keccak256(reason),
            keccak256(
                abi.encodeWithSelector(IDebtChannels.ChannelBadTerms.selector, "a field has bits beyond its type")
            ),
            "named for what it is"
        );
    }

    function test_open_revertsWithMeterBookedWhenDealsOverlap() public {
        DealKeys memory k = openStandard();
        DealKeys memory k2 = nextDealOnMeter(k);
        k2.deal.firstInterval = k.deal.lastInterval; // overlaps the last interval
        (bytes memory sb, bytes memory ss) = signDeal(k2);
        vm.expectRevert(
            abi.encodeWithSelector(IDebtChannels.ChannelMeterBooked.selector, k.seller.meter, k.deal.lastInterval)
        );
        channels.open(k2.deal, sb, ss);
    }

    function test_open_revertsWithRoleNotAllowedWhenPassiveConsumerSells() public {
        DealKeys memory k;
        k.seller = newCell(CellType.PassiveConsumer);
        k.buyer = newCell(CellType.PassiveConsumer);
        k.deal = terms(k.buyer, k.seller);
        (bytes memory sb, bytes memory ss) = signDeal(k);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelRoleNotAllowed.selector, k.seller.id));
        channels.open(k.deal, sb, ss);
    }

    function test_open_revertsWithOverLimitWhenDealExceedsConnection() public {
        DealKeys memory k;
        k.seller = newCell(CellType.Prosumer, LIMIT_W, 4000, FUNDS); // 1000 Wh per interval
        k.buyer = newCell(CellType.PassiveConsumer);
        k.deal = terms(k.buyer, k.seller);
        (bytes memory sb, bytes memory ss) = signDeal(k);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelOverLimit.selector, k.seller.id, MAX_WH, 1000));
        channels.open(k.deal, sb, ss);
    }

    function test_open_revertsWithStartsTooLateWhenFirstIntervalBegun() public {
        DealKeys memory k = standardDeal();
        warpToInterval(k.deal.firstInterval);
        (bytes memory sb, bytes memory ss) = signDeal(k);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDebtChannels.ChannelStartsTooLate.selector, k.deal.firstInterval, k.deal.firstInterval
            )
        );
        channels.open(k.deal, sb, ss);
    }

    function test_open_revertsWithDailyCapExceededBeyondAgentCap() public {
        DealKeys memory k = standardDeal();
        vm.prank(k.buyer.owner);
        wallets.setDailyCap(k.buyer.id, COLLATERAL - 1);
        (bytes memory sb, bytes memory ss) = signDeal(k);
        vm.expectRevert(
            abi.encodeWithSelector(
                ICellWallets.WalletDailyCapExceeded.selector, k.buyer.id, COLLATERAL - 1, 0, COLLATERAL
            )
        );
        channels.open(k.deal, sb, ss);
    }

    function test_open_revertsWithMeterNotInCellWhenMeterIsAnotherCells() public {
        DealKeys memory k = standardDeal();
        k.deal.sellerMeter = k.buyer.meter;
        (bytes memory sb, bytes memory ss) = signDeal(k);
        vm.expectRevert(
            abi.encodeWithSelector(IDebtChannels.ChannelMeterNotInCell.selector, k.buyer.meter, k.seller.id)
        );
        channels.open(k.deal, sb, ss);
    }

    // ---- vouchers ----

    /// Interval 1 delivers 1000 Wh (counter 50,000 -> 51,000), interval 2 delivers 2000 Wh.
    function _deliver(DealKeys memory k)
        internal
        returns (IClearingPool.SignedReading memory first, IClearingPool.SignedReading memory second)
    {
        first = meterReading(k.seller, k.deal.firstInterval, 1000, 51_000);
        second = meterReading(k.seller, k.deal.firstInterval + 1, 2000, 53_000);
        warpToInterval(k.deal.firstInterval + 2);
    }

    function test_redeem_paysSellerWhatTheVoucherSays() public {
        DealKeys memory k = openStandard();
        (IClearingPool.SignedReading memory r1, IClearingPool.SignedReading memory r2) = _deliver(k);
        channels.redeem(k.deal, fairVoucher(k, 1, 1000), r1);
        assertEq(available(k.seller.id), FUNDS + 200_000, "1 kWh at 0.20");
        channels.redeem(k.deal, fairVoucher(k, 2, 3000), r2);
        assertEq(available(k.seller.id), FUNDS + 600_000, "3 kWh at 0.20");
        IDebtChannels.Channel memory ch = state(k);
        assertEq(ch.paid, 600_000, "paid");
        assertEq(ch.collateral, COLLATERAL - 600_000, "collateral left");
        assertEq(ch.seq, 2, "seq");
        assertEq(ch.baselineCumWh, 50_000, "baseline from the first interval's reading");
    }

    function test_redeem_revertsWithStaleVoucher() public {
        DealKeys memory k = openStandard();
        (, IClearingPool.SignedReading memory r2) = _deliver(k);
        channels.redeem(k.deal, fairVoucher(k, 2, 2000), r2);
        IDebtChannels.SignedVoucher memory sv = fairVoucher(k, 1, 1000);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelStaleVoucher.selector, k.id, 1, 2));
        channels.redeem(k.deal, sv, r2);
        sv = fairVoucher(k, 2, 2000);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelStaleVoucher.selector, k.id, 2, 2));
        channels.redeem(k.deal, sv, r2);
    }

    function test_redeem_revertsWithSeqTooLargeAbove2To24() public {
        DealKeys memory k = openStandard();
        (IClearingPool.SignedReading memory r1,) = _deliver(k);
        IDebtChannels.SignedVoucher memory sv = fairVoucher(k, 2 ** 24, 1000);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelSeqTooLarge.selector, 2 ** 24, 2 ** 24 - 1));
        channels.redeem(k.deal, sv, r1);
    }

    function test_redeem_revertsWithOverMeteredWhenVoucherExceedsReading() public {
        DealKeys memory k = openStandard();
        (IClearingPool.SignedReading memory r1,) = _deliver(k);
        IDebtChannels.SignedVoucher memory sv = fairVoucher(k, 1, 1001);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelVoucherOverMetered.selector, 1001, 1000));
        channels.redeem(k.deal, sv, r1);
    }

    function test_redeem_revertsWithOverMeteredWhenVoucherExceedsContract() public {
        DealKeys memory k = openStandard();
        // The meter counted 5000 Wh in the first interval; the deal allows 2000.
        IClearingPool.SignedReading memory r = meterReading(k.seller, k.deal.firstInterval, 5000, 55_000);
        warpToInterval(k.deal.firstInterval + 1);
        IDebtChannels.SignedVoucher memory sv = fairVoucher(k, 1, 2001);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelVoucherOverMetered.selector, 2001, MAX_WH));
        channels.redeem(k.deal, sv, r);
    }

    function test_redeem_revertsWithOverPriceWhenAmountAbovePrice() public {
        DealKeys memory k = openStandard();
        (IClearingPool.SignedReading memory r1,) = _deliver(k);
        IDebtChannels.SignedVoucher memory sv = voucher(k, 1, 1000, 200_001);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelVoucherOverPrice.selector, 200_001, 200_000));
        channels.redeem(k.deal, sv, r1);
    }

    function test_redeem_revertsWithNotAgentWhenSellerSignsVoucher() public {
        DealKeys memory k = openStandard();
        (IClearingPool.SignedReading memory r1,) = _deliver(k);
        IDebtChannels.SignedVoucher memory v = fairVoucher(k, 1, 1000);
        (v.r, v.vs) = vm.signCompact(k.seller.agentKey, channels.hashVoucher(v.voucher));
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelNotAgent.selector, k.buyer.id, k.seller.agent));
        channels.redeem(k.deal, v, r1);
    }

    function test_redeem_revertsWithNotAgentWhenBuyerAgentRotated() public {
        DealKeys memory k = openStandard();
        (IClearingPool.SignedReading memory r1,) = _deliver(k);
        IDebtChannels.SignedVoucher memory v = fairVoucher(k, 1, 1000);
        vm.prank(k.buyer.owner);
        registry.setAgent(k.buyer.id, address(0xA9E));
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelNotAgent.selector, k.buyer.id, k.buyer.agent));
        channels.redeem(k.deal, v, r1);
    }

    function test_redeem_revertsWithMeterNotInCellWhenMeterKeyRemoved() public {
        DealKeys memory k = openStandard();
        (IClearingPool.SignedReading memory r1,) = _deliver(k);
        vm.prank(k.seller.owner);
        registry.removeMeter(k.seller.id, k.seller.meter);
        IDebtChannels.SignedVoucher memory sv = fairVoucher(k, 1, 1000);
        vm.expectRevert(
            abi.encodeWithSelector(IDebtChannels.ChannelMeterNotInCell.selector, k.seller.meter, k.seller.id)
        );
        channels.redeem(k.deal, sv, r1);
    }

    function test_redeem_revertsWithReadingInvalidWhenReadingTampered() public {
        DealKeys memory k = openStandard();
        (IClearingPool.SignedReading memory r1,) = _deliver(k);
        r1.reading.exportCumWh = 60_000;
        IDebtChannels.SignedVoucher memory sv = fairVoucher(k, 1, 1000);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelReadingInvalid.selector, 0));
        channels.redeem(k.deal, sv, r1);
    }

    function test_redeem_revertsWithWrongMeterWhenReadingFromAnotherMeter() public {
        DealKeys memory k = openStandard();
        IClearingPool.SignedReading memory r = meterReading(k.buyer, k.deal.firstInterval, 1000, 1000);
        warpToInterval(k.deal.firstInterval + 1);
        IDebtChannels.SignedVoucher memory sv = fairVoucher(k, 1, 1000);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelWrongMeter.selector, k.buyer.meter, k.seller.meter));
        channels.redeem(k.deal, sv, r);
    }

    // ---- evidence path ----

    function test_redeemWithReadings_paysMinOfMeteredAndContracted() public {
        DealKeys memory k = openStandard();
        // 1000 Wh, then 3500 Wh (the deal allows 2000 per interval: 4000 in two).
        IClearingPool.SignedReading memory r1 = meterReading(k.seller, k.deal.firstInterval, 1000, 51_000);
        IClearingPool.SignedReading memory r2 = meterReading(k.seller, k.deal.firstInterval + 1, 3500, 54_500);
        warpToInterval(k.deal.firstInterval + 2);
        channels.redeemWithReadings(k.deal, _readings(r1, r2));
        assertEq(state(k).paid, 800_000, "min(4500 metered, 4000 contracted) Wh at 0.20");
    }

    function test_redeemWithReadings_countsFromLaterIntervalWithoutTheFirst() public {
        DealKeys memory k = openStandard();
        (, IClearingPool.SignedReading memory r2) = _deliver(k);
        channels.redeemWithReadings(k.deal, one(r2));
        assertEq(state(k).paid, 400_000, "only the 2000 Wh the reading itself shows");
        (IClearingPool.SignedReading memory r1,) = _deliver(k);
        channels.redeemWithReadings(k.deal, one(r1));
        channels.redeemWithReadings(k.deal, one(r2));
        assertEq(state(k).paid, 600_000, "the first interval's reading lowers the baseline");
    }

    function test_redeemWithReadings_revertsWithOutOfRangeWhenReadingBeforeDeal() public {
        DealKeys memory k = openStandard();
        IClearingPool.SignedReading memory r = meterReading(k.seller, k.deal.firstInterval - 1, 1000, 50_000);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDebtChannels.ChannelReadingOutOfRange.selector,
                k.deal.firstInterval - 1,
                k.deal.firstInterval,
                k.deal.lastInterval
            )
        );
        channels.redeemWithReadings(k.deal, one(r));
    }

    function test_redeemWithReadings_revertsWithImplausibleWhenIntervalAboveCounter() public {
        DealKeys memory k = openStandard();
        IClearingPool.SignedReading memory r = meterReading(k.seller, k.deal.firstInterval, 2000, 1000);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelImplausibleReading.selector, 0));
        channels.redeemWithReadings(k.deal, one(r));
    }

    // ---- closing ----

    function test_closeCooperative_paysRefundsAndFreesMeter() public {
        DealKeys memory k = openStandard();
        (IClearingPool.SignedReading memory r1,) = _deliver(k);
        channels.redeem(k.deal, fairVoucher(k, 1, 1000), r1);
        closeTogether(k, 500_000);
        assertEq(available(k.seller.id), FUNDS + 500_000, "seller got the final amount");
        assertEq(available(k.buyer.id), FUNDS - 500_000, "buyer got the rest back");
        assertEq(wallets.marketBalance(address(channels)), 0, "nothing left in the channels");
        assertEq(uint256(state(k).status), uint256(IDebtChannels.Status.Closed), "closed");
        assertEq(channels.bookedThrough(k.seller.meter), k.deal.firstInterval + 2, "meter free after now");
    }

    function test_closeCooperative_takesTheSendingAgentsConsentForAnEmptySignature() public {
        DealKeys memory k = openStandard();
        bytes memory sellerSig = signDigest(k.seller.agentKey, channels.hashClose(k.id, 0));
        // The buyer's agent cannot stand for the seller too.
        vm.prank(k.buyer.agent);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelNotAgent.selector, k.seller.id, k.buyer.agent));
        channels.closeCooperative(k.deal, 0, "", "");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelNotAgent.selector, k.buyer.id, stranger));
        channels.closeCooperative(k.deal, 0, "", sellerSig);
        vm.prank(k.buyer.agent);
        channels.closeCooperative(k.deal, 0, "", sellerSig);
        assertEq(uint256(state(k).status), uint256(IDebtChannels.Status.Closed), "closed");
        assertEq(available(k.buyer.id), FUNDS, "collateral back");
    }

    function test_closeCooperative_revertsWithNotAgentWhenVoucherSignatureReused() public {
        DealKeys memory k = openStandard();
        // A voucher signature is not a close signature (another EIP-712 type).
        IDebtChannels.SignedVoucher memory v = fairVoucher(k, 1, 0);
        bytes memory vsig = abi.encodePacked(v.r, v.vs);
        bytes32 digest = channels.hashClose(k.id, 0);
        bytes memory sellerSig = signDigest(k.seller.agentKey, digest);
        vm.expectPartialRevert(IDebtChannels.ChannelNotAgent.selector);
        channels.closeCooperative(k.deal, 0, vsig, sellerSig);
    }

    function test_startClose_revertsWithNotPartyForStranger() public {
        DealKeys memory k = openStandard();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelNotParty.selector, k.id, stranger));
        channels.startClose(k.deal);
    }

    function test_startClose_revertsWithTooEarlyForBuyerBeforeDeliveryEnds() public {
        DealKeys memory k = openStandard();
        uint256 deliveryEnd = (uint256(k.deal.lastInterval) + 1) * INTERVAL;
        vm.warp(deliveryEnd - 1);
        vm.prank(k.buyer.agent);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelTooEarlyToClose.selector, deliveryEnd));
        channels.startClose(k.deal);
        vm.warp(deliveryEnd);
        vm.prank(k.buyer.agent);
        channels.startClose(k.deal);
        assertEq(uint256(state(k).status), uint256(IDebtChannels.Status.Closing), "closing");
    }

    function test_startClose_secondCallDoesNotMoveDeadline() public {
        DealKeys memory k = openStandard();
        vm.prank(k.seller.agent);
        channels.startClose(k.deal);
        uint40 deadline = state(k).closeDeadline;
        vm.warp(block.timestamp + 1 hours);
        vm.prank(k.seller.owner);
        channels.startClose(k.deal);
        vm.prank(k.buyer.owner);
        channels.startClose(k.deal);
        assertEq(state(k).closeDeadline, deadline, "the window is fixed");
    }

    function _closingWithDelivery()
        internal
        returns (DealKeys memory k, IClearingPool.SignedReading memory r1, IClearingPool.SignedReading memory r2)
    {
        k = openStandard();
        (r1, r2) = _deliver(k);
        channels.redeem(k.deal, fairVoucher(k, 1, 1000), r1);
        vm.prank(k.seller.agent);
        channels.startClose(k.deal);
    }

    function test_challenge_boundaryAtDeadline() public {
        (DealKeys memory k,, IClearingPool.SignedReading memory r2) = _closingWithDelivery();
        uint40 deadline = state(k).closeDeadline;
        assertEq(deadline, block.timestamp + CHALLENGE_WINDOW, "window from the close");
        IDebtChannels.SignedVoucher memory v2 = fairVoucher(k, 2, 2000);
        IDebtChannels.SignedVoucher memory v3 = fairVoucher(k, 3, 3000);
        vm.warp(deadline - 1);
        channels.challenge(k.deal, v2, r2); // one second before: accepted
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelWindowClosed.selector, deadline));
        channels.challenge(k.deal, v3, r2);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelWindowClosed.selector, deadline));
        channels.challenge(k.deal, v3, r2);
        assertEq(state(k).owed, 400_000, "the voucher accepted in time counts");
    }

    function test_settle_boundaryAtDeadline() public {
        (DealKeys memory k,, IClearingPool.SignedReading memory r2) = _closingWithDelivery();
        channels.challenge(k.deal, fairVoucher(k, 2, 3000), r2);
        uint40 deadline = state(k).closeDeadline;
        vm.warp(deadline - 1);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelWindowOpen.selector, deadline));
        channels.settle(k.deal);
        vm.warp(deadline);
        channels.settle(k.deal);
        assertEq(available(k.seller.id), FUNDS + 600_000, "3 kWh paid");
        assertEq(available(k.buyer.id), FUNDS - 600_000, "rest refunded");
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IDebtChannels.ChannelNotClosing.selector, k.id, IDebtChannels.Status.Closed)
        );
        channels.settle(k.deal);
    }

    function test_challenge_doesNotExtendWindow() public {
        (DealKeys memory k,, IClearingPool.SignedReading memory r2) = _closingWithDelivery();
        uint40 deadline = state(k).closeDeadline;
        vm.warp(deadline - 10);
        channels.challenge(k.deal, fairVoucher(k, 2, 3000), r2);
        assertEq(state(k).closeDeadline, deadline, "unchanged");
    }

    function test_settle_recordsDebtBeyondCollateral() public {
        DealKeys memory k = standardDeal();
        k.deal.collateral = 300_000; // covers 1.5 kWh
        openDeal(k);
        // The buyer empties its wallet: the debt cannot be paid at once.
        vm.prank(k.buyer.owner);
        wallets.withdraw(k.buyer.id, FUNDS - 300_000, k.buyer.owner);
        (IClearingPool.SignedReading memory r1, IClearingPool.SignedReading memory r2) = _deliver(k);
        channels.redeemWithReadings(k.deal, _readings(r1, r2));
        assertEq(available(k.seller.id), FUNDS + 300_000, "collateral paid out");
        vm.prank(k.seller.agent);
        channels.startClose(k.deal);
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        channels.settle(k.deal);
        assertEq(wallets.debtOf(k.buyer.id), 300_000, "3 kWh owed, 1.5 paid: debt 0.30");

        // The debt blocks the buyer's buy orders and deals ...
        uint64 t = nextInterval();
        IClearingPool.Order memory o = order(k.buyer.id, t, Side.Buy, 1000, BID, 0);
        IClearingPool.SignedOrder memory so = sign(k.buyer.agentKey, o);
        vm.expectRevert(abi.encodeWithSelector(ICellWallets.WalletCellInDebt.selector, k.buyer.id, 300_000));
        pool.submitOrders(_batch(so));

        // ... and the next deposit repays it first; the seller collects.
        token.faucet(address(this), 1_000_000);
        token.approve(address(wallets), 1_000_000);
        wallets.deposit(k.buyer.id, 1_000_000);
        assertEq(wallets.debtOf(k.buyer.id), 0, "repaid");
        assertEq(available(k.buyer.id), 700_000, "the rest of the deposit");
        wallets.collectDebt(1);
        assertEq(available(k.seller.id), FUNDS + 600_000, "the seller has all 3 kWh");
        pool.submitOrders(_batch(so));
    }

    // ---- collateral ----

    function test_topUp_paysWhatWasOwedBeyondCollateral() public {
        DealKeys memory k = standardDeal();
        k.deal.collateral = 100_000;
        openDeal(k);
        (IClearingPool.SignedReading memory r1,) = _deliver(k);
        channels.redeem(k.deal, fairVoucher(k, 1, 1000), r1);
        assertEq(state(k).paid, 100_000, "as far as the collateral goes");
        vm.prank(k.buyer.agent);
        channels.topUp(k.deal, 500_000);
        assertEq(state(k).paid, 200_000, "the rest paid from the top-up");
        assertEq(state(k).collateral, 400_000, "collateral left");
    }

    function test_withdrawCollateral_onlyAfterDelayAndOnlyWhatIsNotOwed() public {
        DealKeys memory k = openStandard();
        vm.prank(k.buyer.agent);
        channels.requestWithdrawal(k.deal, COLLATERAL);
        uint40 at = state(k).withdrawalAt;
        assertEq(at, block.timestamp + WITHDRAWAL_DELAY, "delay");
        assertGt(WITHDRAWAL_DELAY, CHALLENGE_WINDOW, "longer than the window");
        (IClearingPool.SignedReading memory r1,) = _deliver(k);
        channels.redeemWithReadings(k.deal, one(r1));
        vm.warp(at - 1);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelWithdrawalNotDue.selector, at));
        channels.withdrawCollateral(k.deal);
        vm.warp(at);
        channels.withdrawCollateral(k.deal);
        assertEq(state(k).collateral, 0, "all unused collateral back");
        assertEq(available(k.buyer.id), FUNDS - 200_000, "the buyer paid for 1 kWh");
    }

    function test_closeCooperative_keepsAnEarlierDealsBookingOnTheMeter() public {
        // Deal a runs intervals 1-4 from now, deal b on the same meter 5-8. Closing b before
        // it starts must not free a's intervals for a third deal.
        DealKeys memory a = openStandard();
        DealKeys memory b = nextDealOnMeter(a);
        openDeal(b);
        closeTogether(b, 0);
        assertEq(channels.bookedThrough(a.seller.meter), a.deal.lastInterval, "a's intervals stay booked");
    }

    // ---- close records: in the meter's slot, or the channel's own ----

    function test_settle_twoDealsOfOneMeterClosingAtOnceEachSettleOnTheirOwnRecord() public {
        DealKeys memory a = openStandard();
        DealKeys memory b = nextDealOnMeter(a);
        b.deal.collateral = 2 * COLLATERAL; // unlike a's, so that a mixed-up record would show
        openDeal(b);
        (IClearingPool.SignedReading memory r1, IClearingPool.SignedReading memory r2) = _deliver(a);
        channels.redeem(a.deal, fairVoucher(a, 1, 1000), r1);
        // The seller gives up both deals: a's record takes the meter's slot, b's its own.
        vm.startPrank(a.seller.agent);
        channels.startClose(a.deal);
        channels.startClose(b.deal);
        vm.stopPrank();
        IDebtChannels.Channel memory sa = state(a);
        IDebtChannels.Channel memory sb = state(b);
        assertEq(sa.paid, 200_000, "a: 1 kWh paid before the close");
        assertEq(sa.collateral, COLLATERAL - 200_000, "a: the rest locked");
        assertEq(sb.paid, 0, "b: nothing paid");
        assertEq(sb.collateral, 2 * COLLATERAL, "b: all its collateral locked");
        channels.challenge(a.deal, fairVoucher(a, 2, 3000), r2);
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        // b settles first, from its own record; then a, from the meter's slot.
        channels.settle(b.deal);
        assertEq(available(b.buyer.id), FUNDS, "b's buyer gets all its collateral back");
        assertEq(state(a).collateral, COLLATERAL - 200_000, "a's record untouched by b's settlement");
        channels.settle(a.deal);
        assertEq(available(a.seller.id), FUNDS + 600_000, "3 kWh paid for a");
        assertEq(available(a.buyer.id), FUNDS - 600_000, "a's buyer gets the rest back");
        // The meter's slot is free again: the next close on the meter takes it.
        DealKeys memory c;
        c.seller = a.seller;
        c.buyer = newCell(CellType.PassiveConsumer);
        c.deal = terms(c.buyer, c.seller);
        openDeal(c);
        vm.prank(c.seller.agent);
        channels.startClose(c.deal);
        assertEq(state(c).collateral, COLLATERAL, "c's record found at the meter");
    }

    function test_settle_recordInTheMetersSlotSurvivesALaterDealOpeningOnTheMeter() public {
        DealKeys memory a = openStandard();
        (IClearingPool.SignedReading memory r1, IClearingPool.SignedReading memory r2) = _deliver(a);
        channels.redeem(a.deal, fairVoucher(a, 1, 1000), r1);
        vm.prank(a.seller.agent);
        channels.startClose(a.deal);
        DealKeys memory b = nextDealOnMeter(a);
        openDeal(b);
        assertEq(channels.bookedThrough(a.seller.meter), b.deal.lastInterval, "b booked the meter");
        assertEq(state(a).collateral, COLLATERAL - 200_000, "a's close record kept by b's opening");
        channels.challenge(a.deal, fairVoucher(a, 2, 3000), r2);
        vm.warp(state(a).closeDeadline);
        channels.settle(a.deal);
        assertEq(available(a.seller.id), FUNDS + 600_000, "3 kWh paid");
        assertEq(available(a.buyer.id), FUNDS - 600_000, "the rest refunded");
        assertEq(channels.bookedThrough(a.seller.meter), b.deal.lastInterval, "b's booking kept by a's settlement");
        assertEq(uint256(state(b).status), uint256(IDebtChannels.Status.Open), "b open");
    }

    function test_channelOf_revertsWithCloseRecordNotAtMeterForAnotherMeterWhileClosing() public {
        DealKeys memory k = openStandard();
        CellKeys memory other = newCell(CellType.Prosumer);
        // Open: the meter is not needed, so not checked.
        assertEq(channels.channelOf(k.id, other.meter).collateral, COLLATERAL, "open");
        vm.prank(k.seller.agent);
        channels.startClose(k.deal);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelCloseRecordNotAtMeter.selector, k.id, other.meter));
        channels.channelOf(k.id, other.meter);
        IDebtChannels.Channel memory ch = state(k);
        assertEq(ch.collateral, COLLATERAL, "the deal's meter finds it");
        assertEq(ch.closeDeadline, block.timestamp + CHALLENGE_WINDOW, "deadline while closing");
        vm.warp(ch.closeDeadline);
        channels.settle(k.deal);
        ch = channels.channelOf(k.id, other.meter);
        assertEq(uint256(ch.status), uint256(IDebtChannels.Status.Closed), "closed");
        assertEq(ch.closeDeadline, 0, "the deadline is the ChannelClosing event's once closed");
    }

    // ---- replay and signatures ----

    function test_redeem_revertsWithOtherChannelWhenVoucherFromAnotherChannel() public {
        DealKeys memory a = openStandard();
        DealKeys memory b = openStandard();
        (IClearingPool.SignedReading memory r1,) = _deliver(b);
        IDebtChannels.SignedVoucher memory v = fairVoucher(a, 1, 1000);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelVoucherForOtherChannel.selector, b.id, a.id));
        channels.redeem(b.deal, v, r1);
    }

    function test_redeem_revertsWhenReadingOfOneChannelUsedInAnother() public {
        // Two deals on the same meter, one after the other: a reading of the first deal's
        // interval counts in the first only.
        DealKeys memory a = openStandard();
        DealKeys memory b = nextDealOnMeter(a);
        openDeal(b);
        (IClearingPool.SignedReading memory r1,) = _deliver(a);
        IDebtChannels.SignedVoucher memory sv = fairVoucher(b, 1, 1000);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDebtChannels.ChannelReadingOutOfRange.selector,
                a.deal.firstInterval,
                b.deal.firstInterval,
                b.deal.lastInterval
            )
        );
        channels.redeem(b.deal, sv, r1);
    }

    function test_open_revertsOnAnotherContractOrChain() public {
        DealKeys memory k = standardDeal();
        (bytes memory b, bytes memory s) = signDeal(k);

        DebtChannels other = new DebtChannels(registry, wallets, INTERVAL, CHALLENGE_WINDOW, WITHDRAWAL_DELAY);
        wallets.addMarket(address(other));
        vm.expectPartialRevert(IDebtChannels.ChannelNotAgent.selector);
        other.open(k.deal, b, s);

        uint256 snapshot = vm.snapshotState();
        vm.chainId(block.chainid + 1);
        vm.expectPartialRevert(IDebtChannels.ChannelNotAgent.selector);
        channels.open(k.deal, b, s);
        vm.revertToState(snapshot);

        channels.open(k.deal, b, s); // here, on this chain, it opens
    }

    function test_open_signatureEdgeCases() public {
        DealKeys memory k = standardDeal();
        bytes32 digest = channels.channelId(k.deal);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(k.buyer.agentKey, digest);
        bytes memory seller = signDigest(k.seller.agentKey, digest);

        // High s: the same signature's malleable twin.
        bytes memory high = abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelBadSignature.selector, 65));
        channels.open(k.deal, high, seller);

        // Wrong lengths.
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelBadSignature.selector, 63));
        channels.open(k.deal, new bytes(63), seller);
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelBadSignature.selector, 66));
        channels.open(k.deal, abi.encodePacked(r, s, v, uint8(0)), seller);

        // Recovers no address: v neither 27 nor 28.
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelBadSignature.selector, 65));
        channels.open(k.deal, abi.encodePacked(r, s, uint8(29)), seller);

        // Recovers no address: r = 0.
        vm.expectRevert(abi.encodeWithSelector(IDebtChannels.ChannelBadSignature.selector, 65));
        channels.open(k.deal, abi.encodePacked(bytes32(0), s, v), seller);

        // The 64-byte EIP-2098 form of the good signature is accepted.
        (bytes32 cr, bytes32 cvs) = vm.signCompact(k.buyer.agentKey, digest);
        channels.open(k.deal, abi.encodePacked(cr, cvs), seller);
    }

    // ---- stale vouchers, after Raiden's settlement tests ----

    struct Step {
        uint8 action; // 0 redeem, 1 challenge (closing), 2 closeWithVoucher (seller)
        uint8 voucher; // index into the vouchers: seq = index + 1
        bool reverts;
    }

    /// Vouchers seq 1, 2, 3 for 1000, 3000, 2500 Wh (the third, newer, says less: a buyer
    /// going back on its word). Whatever order they arrive in, the seller ends with what the
    /// highest accepted voucher proved, and never more than the latest proves.
    function test_staleVoucherTable() public {
        Step[4][6] memory table = [
            [Step(0, 0, false), Step(0, 1, false), Step(0, 2, false), Step(0, 0, true)],
            [Step(0, 1, false), Step(0, 0, true), Step(2, 2, false), Step(1, 1, true)],
            [Step(2, 0, false), Step(1, 1, false), Step(1, 0, true), Step(1, 2, false)],
            [Step(2, 1, false), Step(1, 0, true), Step(1, 1, true), Step(1, 2, false)],
            [Step(0, 2, false), Step(0, 1, true), Step(2, 0, true), Step(0, 0, true)],
            [Step(2, 2, false), Step(1, 1, true), Step(1, 0, true), Step(1, 2, true)]
        ];
        uint96[6] memory expected = [uint96(600_000), 600_000, 600_000, 600_000, 500_000, 500_000];
        uint64[3] memory wh = [uint64(1000), 3000, 2500];
        for (uint256 row = 0; row < table.length; ++row) {
            uint256 snapshot = vm.snapshotState();
            DealKeys memory k = openStandard();
            (, IClearingPool.SignedReading memory r2) = _deliver(k);
            channels.redeemWithReadings(k.deal, one(meterReading(k.seller, k.deal.firstInterval, 1000, 51_000)));
            // Reset to a fresh channel state: the evidence above set the baseline, nothing owed
            // beyond 1000 Wh.
            for (uint256 i = 0; i < 4; ++i) {
                Step memory st = table[row][i];
                IDebtChannels.SignedVoucher memory v = fairVoucher(k, st.voucher + 1, wh[st.voucher]);
                // Every refusal in the table is a stale voucher (seq not above the latest).
                if (st.reverts) vm.expectPartialRevert(IDebtChannels.ChannelStaleVoucher.selector);
                if (st.action == 0) {
                    channels.redeem(k.deal, v, r2);
                } else if (st.action == 1) {
                    channels.challenge(k.deal, v, r2);
                } else {
                    vm.prank(k.seller.agent);
                    channels.closeWithVoucher(k.deal, v, r2);
                }
            }
            if (state(k).status == IDebtChannels.Status.Closing) {
                vm.warp(block.timestamp + CHALLENGE_WINDOW);
                channels.settle(k.deal);
            }
            assertEq(available(k.seller.id) - FUNDS, expected[row], "seller's total from the channel");
            vm.revertToState(snapshot);
        }
    }

    // ---- fuzz ----

    function testFuzz_redeemWithReadings_neverPaysMoreThanMeteredOrContracted(
        uint64 during1,
        uint64 during2,
        uint64 start
    ) public {
        during1 = uint64(bound(during1, 0, 10_000));
        during2 = uint64(bound(during2, 0, 10_000));
        start = uint64(bound(start, 0, type(uint32).max));
        DealKeys memory k = openStandard();
        IClearingPool.SignedReading memory r1 = meterReading(k.seller, k.deal.firstInterval, during1, start + during1);
        IClearingPool.SignedReading memory r2 =
            meterReading(k.seller, k.deal.firstInterval + 1, during2, start + during1 + during2);
        warpToInterval(k.deal.firstInterval + 2);
        channels.redeemWithReadings(k.deal, _readings(r2, r1));
        uint256 metered = uint256(during1) + during2;
        uint256 allowed = metered < 2 * MAX_WH ? metered : 2 * MAX_WH;
        uint256 worth = (allowed * PRICE) / 1000;
        uint256 expected = worth < COLLATERAL ? worth : COLLATERAL;
        assertEq(state(k).paid, expected, "paid = min(metered, contracted) x price, within collateral");
        assertEq(available(k.seller.id), FUNDS + expected, "and it reached the seller");
    }
}
