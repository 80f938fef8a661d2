// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICellWallets} from "../../src/interfaces/ICellWallets.sol";
import {IDebtChannels} from "../../src/interfaces/IDebtChannels.sol";
import {ChannelFixture} from "../utils/ChannelFixture.sol";
import {ChannelHandler} from "./ChannelHandler.sol";

/// @notice Invariants of the debt channels and the wallets' debt ledger, driven by
/// {ChannelHandler}. Each property compares the contracts with ghost state the handler kept
/// from what it did (collateral committed, vouchers signed and accepted, readings presented, the
/// meters' true counters, deposits and withdrawals) and with the wallets' token balance, so
/// none of them passes by reading the channels' own sums back to them.
contract DebtChannelsInvariantTest is ChannelFixture {
    ChannelHandler internal handler;

    function setUp() public virtual override {
        super.setUp();
        handler = new ChannelHandler(token, registry, wallets, channels);
        // A selector listed more than once is called more often: a deal needs deliveries,
        // vouchers and redemptions before its close says anything.
        bytes4[] memory selectors = new bytes4[](32);
        selectors[0] = ChannelHandler.openDeal.selector;
        selectors[1] = ChannelHandler.openDeal.selector;
        selectors[2] = ChannelHandler.deliver.selector;
        selectors[3] = ChannelHandler.deliver.selector;
        selectors[4] = ChannelHandler.deliver.selector;
        selectors[5] = ChannelHandler.deliver.selector;
        selectors[6] = ChannelHandler.signVoucher.selector;
        selectors[7] = ChannelHandler.signVoucher.selector;
        selectors[8] = ChannelHandler.signVoucher.selector;
        selectors[9] = ChannelHandler.signVoucher.selector;
        selectors[10] = ChannelHandler.redeem.selector;
        selectors[11] = ChannelHandler.redeem.selector;
        selectors[12] = ChannelHandler.redeemWithReadings.selector;
        selectors[13] = ChannelHandler.redeemWithReadings.selector;
        selectors[14] = ChannelHandler.submitStale.selector;
        selectors[15] = ChannelHandler.submitStale.selector;
        selectors[16] = ChannelHandler.startClose.selector;
        selectors[17] = ChannelHandler.startClose.selector;
        selectors[18] = ChannelHandler.challenge.selector;
        selectors[19] = ChannelHandler.challenge.selector;
        selectors[20] = ChannelHandler.settle.selector;
        selectors[21] = ChannelHandler.settle.selector;
        selectors[22] = ChannelHandler.closeCooperative.selector;
        selectors[23] = ChannelHandler.topUp.selector;
        selectors[24] = ChannelHandler.requestWithdrawal.selector;
        selectors[25] = ChannelHandler.withdrawCollateral.selector;
        selectors[26] = ChannelHandler.deposit.selector;
        selectors[27] = ChannelHandler.repayDebt.selector;
        selectors[28] = ChannelHandler.collectDebt.selector;
        selectors[29] = ChannelHandler.withdraw.selector;
        selectors[30] = ChannelHandler.addMeter.selector;
        selectors[31] = ChannelHandler.warp.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// Solvency: every token the wallets contract holds is a cell's (available or locked),
    /// a market's, or a repayment waiting for its creditor; and the channels' account holds
    /// exactly the collateral of the channels not yet closed (collateral leaves the buyer's
    /// balance for it at opening and top-up, and nothing else pays into it).
    function invariant_solvency() public view {
        (, IDebtChannels.Channel[] memory chs) = handler.channelGhosts();
        uint256 collateral;
        for (uint256 i = 0; i < chs.length; ++i) {
            if (chs[i].status == IDebtChannels.Status.Closed) {
                _eq(chs[i].collateral, 0, "a closed channel holds collateral");
            }
            collateral += chs[i].collateral;
        }
        uint256 market = wallets.marketBalance(address(channels));
        _eq(market, collateral, "channels' account != collateral of the live channels");
        _eq(market, handler.totals().market, "channels' account != collateral committed - paid out");
        (, ChannelHandler.CellView[] memory vs) = handler.cells(false, false);
        uint256 sum;
        for (uint256 c = 0; c < vs.length; ++c) {
            sum += vs[c].available + vs[c].locked;
        }
        _eq(
            token.balanceOf(address(wallets)),
            sum + wallets.heldForCreditors() + market + wallets.marketBalance(address(pool)),
            "wallets' tokens != cells + held for creditors + markets"
        );
    }

    /// Conservation: on every path (redeemed, settled, closed cooperatively, withdrawn) each
    /// channel's collateral is held, paid to the seller, refunded or withdrawn, never made or
    /// lost; a closed channel's owed amount is what it paid plus the shortfall, and the
    /// shortfall is what the buyer's available money paid at once plus the debt recorded.
    /// Every cell holds what the ghost ledger says, and tokens only enter by the faucet.
    function invariant_conservation() public view {
        (ChannelHandler.ChannelGhost[] memory gs, IDebtChannels.Channel[] memory chs) = handler.channelGhosts();
        for (uint256 i = 0; i < gs.length; ++i) {
            ChannelHandler.ChannelGhost memory g = gs[i];
            _eq(chs[i].collateral, g.collateral, "collateral != ghost");
            _eq(
                uint256(chs[i].collateral) + chs[i].paid + g.refunded + g.withdrawn,
                g.committed,
                "collateral + paid + refunded + withdrawn != committed"
            );
            if (g.status != IDebtChannels.Status.Closed) continue;
            _eq(chs[i].owed, uint256(chs[i].paid) + g.shortfall, "owed at close != paid + shortfall");
            _eq(g.shortfall, uint256(g.paidAtOnce) + g.debtRecorded, "shortfall != paid at once + debt");
        }
        (ChannelHandler.CellGhost[] memory cs, ChannelHandler.CellView[] memory vs) = handler.cells(false, true);
        uint256 outside = token.balanceOf(address(handler));
        for (uint256 c = 0; c < cs.length; ++c) {
            _eq(vs[c].locked, 0, "money locked, though only the pool locks");
            _eq(vs[c].available, cs[c].total, "available != ghost ledger");
            outside += vs[c].ownerTokens;
        }
        uint256 held = token.balanceOf(address(wallets));
        ChannelHandler.Totals memory t = handler.totals();
        _eq(held, t.deposited - t.withdrawn, "wallets' tokens != deposits - withdrawals");
        _eq(held + outside, t.minted, "tokens in and out of the wallets != minted");
    }

    /// What the seller is owed is the highest amount proven (by an accepted voucher or by
    /// readings alone) or agreed by both; a stale or refused voucher never counts. The seller
    /// is paid that as far as the collateral goes: while open, paid = min(owed, collateral
    /// funded), and never more than owed. What must be refused was refused, with the right
    /// error (stale vouchers, over-metered vouchers, early closes and settlements, buyers in
    /// debt).
    function invariant_paidFollowsLatestProof() public view {
        (ChannelHandler.ChannelGhost[] memory gs, IDebtChannels.Channel[] memory chs) = handler.channelGhosts();
        for (uint256 i = 0; i < gs.length; ++i) {
            ChannelHandler.ChannelGhost memory g = gs[i];
            IDebtChannels.Channel memory ch = chs[i];
            _eq(ch.owed, g.owed, "owed != ghost");
            _eq(ch.paid, g.paid, "paid != ghost");
            _le(ch.paid, ch.owed, "paid more than owed");
            if (g.cooperative) {
                _eq(ch.owed, g.finalAmount, "owed != the amount both signed");
            } else {
                uint256 proven = g.maxVoucher > g.maxEvidence ? g.maxVoucher : g.maxEvidence;
                _eq(ch.owed, proven, "owed != the highest accepted voucher or proven amount");
            }
            if (g.status == IDebtChannels.Status.Open) {
                uint256 funded = uint256(g.committed) - g.withdrawn;
                _eq(ch.paid, ch.owed < funded ? ch.owed : funded, "open channel paid != min(owed, funded)");
            }
        }
        uint256 violations = handler.totals().violations;
        if (violations != 0) assertEq(violations, 0, handler.lastViolation());
    }

    /// A channel's seq is that of the latest voucher accepted, never one the buyer did not
    /// sign, and never goes down (the handler also watches it after every action).
    function invariant_seqMonotonic() public view {
        (ChannelHandler.ChannelGhost[] memory gs, IDebtChannels.Channel[] memory chs) = handler.channelGhosts();
        for (uint256 i = 0; i < gs.length; ++i) {
            _eq(chs[i].seq, gs[i].acceptedSeq, "seq != latest accepted voucher");
            _ge(chs[i].seq, gs[i].seenSeq, "seq went down");
            _le(gs[i].acceptedSeq, gs[i].signedSeq, "accepted a voucher never signed");
        }
    }

    /// The debt ledger: each cell owes what was recorded against it less what it repaid;
    /// repayments not yet collected are held for creditors; every debt is recorded as the
    /// ghost says, with what its creditor can collect now (repayments fill debts in order).
    function invariant_debtLedger() public view {
        (ChannelHandler.CellGhost[] memory cs, ChannelHandler.CellView[] memory vs) = handler.cells(true, false);
        for (uint256 c = 0; c < cs.length; ++c) {
            _eq(vs[c].debt, cs[c].recorded - cs[c].repaid, "debt != recorded - repaid");
        }
        ChannelHandler.Totals memory t = handler.totals();
        _eq(wallets.heldForCreditors(), t.repaid - t.collected, "held for creditors != repaid - collected");
        (ChannelHandler.DebtGhost[] memory ds, ChannelHandler.DebtView[] memory dv) = handler.debts();
        uint256 recorded;
        for (uint256 k = 0; k < ds.length; ++k) {
            ICellWallets.Debt memory d = dv[k].debt;
            _eq(d.debtor, cs[ds[k].debtor].id, "debtor");
            _eq(d.creditor, cs[ds[k].creditor].id, "creditor");
            _eq(d.start, ds[k].start, "debt range start");
            _eq(d.end, ds[k].end, "debt range end");
            _eq(d.collected, ds[k].collected, "debt collected");
            _eq(dv[k].collectable, dv[k].ghostCollectable, "collectable != repaid share not collected");
            recorded += ds[k].end - ds[k].start;
        }
        _eq(recorded, t.recorded, "debts != debt recorded at closes");
        _eq(dv[ds.length].debt.end, 0, "a debt nobody recorded");
    }

    /// A seller is never owed or paid for more energy than the meter signed or the deal
    /// allows: owed <= floor(min(export counted since the deal began, maxWhPerInterval x the
    /// intervals up to the latest reading) x price / 1000), with the meter's true counter at
    /// the deal's start (readings can only show a later, higher one). An amount both agents
    /// signed at a cooperative close is exempt, but what was paid before it is not. And no Wh
    /// is paid twice: one meter backs one deal at a time, so the intervals two channels on the
    /// same meter can count (first to last while open; to the interval the close ended the
    /// deal in once closing or closed) never overlap, and the meter stays booked through every
    /// interval a channel on it can count, so no deal opened later can take one.
    function invariant_sellerPaidOnlyForMeteredEnergy() public view {
        (ChannelHandler.ChannelGhost[] memory gs, IDebtChannels.Channel[] memory chs) = handler.channelGhosts();
        for (uint256 i = 0; i < gs.length; ++i) {
            ChannelHandler.ChannelGhost memory g = gs[i];
            IDebtChannels.Channel memory ch = chs[i];
            uint256 worth;
            if (g.hasReading) {
                uint256 metered = g.lastReadCumWh - g.trueBaseWh;
                uint256 contracted = uint256(g.deal.maxWhPerInterval) * (g.lastRead - g.deal.firstInterval + 1);
                worth = ((metered < contracted ? metered : contracted) * g.deal.pricePerKWh) / 1000;
            }
            if (g.hasBase) {
                _eq(ch.baselineCumWh, g.baseWh, "baseline != lowest start of the readings presented");
                _ge(ch.baselineCumWh, g.trueBaseWh, "baseline below the meter's counter at the deal's start");
            }
            if (g.cooperative) {
                _le(g.paidBeforeFinal, worth, "paid before the cooperative close for energy not metered");
                _le(ch.paid, g.finalAmount, "paid above the amount both signed");
            } else {
                _le(ch.owed, worth, "owed for energy the meter did not count or the deal did not allow");
            }
        }
        (, uint64[] memory booked) = handler.meters();
        for (uint256 i = 0; i < gs.length; ++i) {
            (uint64 a0, uint64 a1) = _counted(gs[i]);
            if (a1 < a0) continue;
            _ge(booked[gs[i].meter], a1, "a meter's booking released intervals a channel still counts");
            for (uint256 j = i + 1; j < gs.length; ++j) {
                if (gs[j].meter != gs[i].meter) continue;
                (uint64 b0, uint64 b1) = _counted(gs[j]);
                if (b1 >= b0 && a1 >= b0 && b1 >= a0) {
                    assertLt(a1 < b1 ? a1 : b1, a0 > b0 ? a0 : b0, "two deals count the same intervals of a meter");
                }
            }
        }
    }

    /// After every channel is closed and settled, every debt repaid and collected: nothing
    /// stays with the channels, held for creditors or owed, and the properties above still
    /// hold.
    function afterInvariant() public virtual {
        handler.finalize();
        (ChannelHandler.CellGhost[] memory cs, ChannelHandler.CellView[] memory vs) = handler.cells(true, false);
        for (uint256 c = 0; c < cs.length; ++c) {
            _eq(vs[c].locked, 0, "money left locked after every channel closed");
            _eq(vs[c].debt, 0, "debt left after it was repaid");
        }
        _eq(wallets.heldForCreditors(), 0, "repayments left uncollected");
        _eq(wallets.marketBalance(address(channels)), 0, "money left with the channels");
        (, IDebtChannels.Channel[] memory chs) = handler.channelGhosts();
        for (uint256 i = 0; i < chs.length; ++i) {
            assertTrue(chs[i].status == IDebtChannels.Status.Closed, "a channel left open");
        }
        invariant_solvency();
        invariant_conservation();
        invariant_paidFollowsLatestProof();
        invariant_seqMonotonic();
        invariant_debtLedger();
        invariant_sellerPaidOnlyForMeteredEnergy();
    }

    /// The intervals a channel's readings can count in: from the deal's first to its last
    /// while open, to the interval its close ended it in after that (empty if before the first).
    function _counted(ChannelHandler.ChannelGhost memory g) internal pure returns (uint64, uint64) {
        uint64 end = g.status == IDebtChannels.Status.Open ? g.deal.lastInterval : g.endInterval;
        return (g.deal.firstInterval, end);
    }

    // Compare in Solidity first and call the assertion cheatcode only on a mismatch (for its
    // message): the loops run after every call of every run.
    function _eq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) assertEq(a, b, what);
    }

    function _le(uint256 a, uint256 b, string memory what) internal pure {
        if (a > b) assertLe(a, b, what);
    }

    function _ge(uint256 a, uint256 b, string memory what) internal pure {
        if (a < b) assertGe(a, b, what);
    }
}
