// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClearingPool} from "../../src/interfaces/IClearingPool.sol";
import {Side} from "../../src/types/CellTypes.sol";
import {PoolFixture} from "../utils/PoolFixture.sol";
import {PoolHandler} from "./PoolHandler.sol";

/// @notice Invariants of the clearing pool and the wallets over whole intervals, driven by
/// {PoolHandler}. Each property reads the contracts and compares them with ghost state the
/// handler kept from what it did (orders, cancellations, reference fills, readings, the
/// documented payout rule), so none of them can pass by reading the pool's sums back to it.
contract ClearingPoolInvariantTest is PoolFixture {
    PoolHandler internal handler;
    /// The handler's cells, fixed for the campaign.
    uint256[] internal ids;

    function setUp() public virtual override {
        super.setUp();
        handler = new PoolHandler(token, registry, wallets, pool);
        ids = handler.cellIds();
        // A selector listed more than once is called more often: the market steps (submit,
        // clear, settle, claim) need most of the 32 calls of a run.
        bytes4[] memory selectors = new bytes4[](20);
        selectors[0] = PoolHandler.deposit.selector;
        selectors[1] = PoolHandler.withdraw.selector;
        selectors[2] = PoolHandler.setDailyCap.selector;
        selectors[3] = PoolHandler.transferCell.selector;
        selectors[4] = PoolHandler.rotateAgent.selector;
        selectors[5] = PoolHandler.disconnect.selector;
        selectors[6] = PoolHandler.warp.selector;
        selectors[7] = PoolHandler.cancelOrder.selector;
        for (uint256 i = 8; i < 12; ++i) {
            selectors[i] = PoolHandler.submitOrders.selector;
        }
        selectors[12] = PoolHandler.clear.selector;
        selectors[13] = PoolHandler.clear.selector;
        for (uint256 i = 14; i < 17; ++i) {
            selectors[i] = PoolHandler.settle.selector;
        }
        for (uint256 i = 17; i < 20; ++i) {
            selectors[i] = PoolHandler.claim.selector;
        }
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// Every token the wallets contract holds is a cell's (available or locked) or the pool's
    /// (paid by buyers, not yet paid to sellers), exactly; and it is what was deposited less
    /// what was withdrawn: market operations only move money inside.
    function invariant_conservation() public view {
        uint256 sum;
        for (uint256 i = 0; i < ids.length; ++i) {
            (uint256 a, uint256 l) = wallets.balanceOf(ids[i]);
            sum += a + l;
        }
        uint256 held = token.balanceOf(address(wallets));
        _eq(held, sum + wallets.marketBalance(address(pool)), "wallets' tokens != cells + market");
        _eq(held, handler.ghostDeposited() - handler.ghostWithdrawn(), "wallets' tokens != deposits - withdrawals");
    }

    /// Each cell holds what it was given less what it withdrew, less what the imbalance rule
    /// says it paid, plus what the rule says it received.
    function invariant_cellBalanceFollowsLedger() public view {
        PoolHandler.CellGhost[] memory cs = handler.cells();
        for (uint256 i = 0; i < cs.length; ++i) {
            (uint256 a, uint256 l) = wallets.balanceOf(cs[i].id);
            _eq(
                a + l + cs[i].withdrawn + cs[i].expectedPaid,
                cs[i].deposited + cs[i].expectedReceived,
                "cell balance != its ledger"
            );
        }
    }

    /// A cell's locked money is exactly the escrow of its positions not yet claimed, and
    /// every position's escrow is the sum of ceil(limit * energy / 1000) over its buy orders
    /// (cancelled ones included: their escrow comes back at claim).
    function invariant_lockedEqualsUnclaimedEscrow() public view {
        (uint64[] memory ts,, PoolHandler.PositionGhost[][] memory ps) = handler.ghosts();
        uint256[] memory escrow = new uint256[](ids.length);
        for (uint256 k = 0; k < ts.length; ++k) {
            for (uint256 i = 0; i < ids.length; ++i) {
                PoolHandler.PositionGhost memory g = ps[k][i];
                if (!g.claimed) escrow[i] += g.escrow;
                // A cell that never touched the interval has no escrow anywhere: the locked
                // balances below would show one that appeared.
                if (g.orderCount == 0 && g.cancelMask == 0) continue;
                IClearingPool.Position memory p = pool.positionOf(ts[k], ids[i]);
                _eq(p.escrow, g.escrow, "position escrow != sum of rounded-up order escrows");
                _eq(p.orderCount, g.orderCount, "position order count");
                _eq(p.cancelMask, g.cancelMask, "position cancel mask");
            }
        }
        for (uint256 i = 0; i < ids.length; ++i) {
            (, uint256 l) = wallets.balanceOf(ids[i]);
            _eq(l, escrow[i], "locked != escrow of unclaimed positions");
        }
    }

    /// The pool's account in the wallets holds the pots not yet paid to sellers: by the
    /// pool's own records, and by the money seen leaving buyers and reaching sellers.
    function invariant_marketBalanceEqualsUnpaidPots() public view {
        (uint64[] memory ts, PoolHandler.IntervalGhost[] memory gs,) = handler.ghosts();
        uint256 pots;
        uint256 paidOut;
        uint256 seenIn;
        uint256 seenOut;
        for (uint256 k = 0; k < ts.length; ++k) {
            IClearingPool.Interval memory s = pool.intervalOf(ts[k]);
            _le(s.paidOut, s.pot, "paid out more than the pot");
            _eq(s.pot, gs[k].paid, "pot != what buyers were seen paying");
            _eq(s.paidOut, gs[k].received, "paid out != what sellers were seen receiving");
            pots += s.pot;
            paidOut += s.paidOut;
            seenIn += gs[k].paid;
            seenOut += gs[k].received;
        }
        uint256 market = wallets.marketBalance(address(pool));
        _eq(market + paidOut, pots, "market balance != sum of pots - paid out");
        _eq(market + seenOut, seenIn, "market balance != buyers' payments - sellers' receipts");
    }

    /// The pool cleared at the reference auction's price and volume, filled each cell as the
    /// reference filled its orders (nothing uncleared has a fill), and recorded the metered
    /// energy the readings carried.
    function invariant_clearingMatchesReference() public view {
        (uint64[] memory ts, PoolHandler.IntervalGhost[] memory gs, PoolHandler.PositionGhost[][] memory ps) =
            handler.ghosts();
        for (uint256 k = 0; k < ts.length; ++k) {
            IClearingPool.Interval memory s = pool.intervalOf(ts[k]);
            _eq(s.cleared, gs[k].cleared, "cleared flag");
            _eq(s.price, gs[k].price, "price != reference midpoint");
            _eq(s.volumeWh, gs[k].volume, "volume != reference volume");
            for (uint256 i = 0; i < ids.length; ++i) {
                // A fill on a cell without orders shows in invariant_clearedVolumeBalances.
                if (ps[k][i].orderCount == 0) continue;
                IClearingPool.Position memory p = pool.positionOf(ts[k], ids[i]);
                _eq(p.filledWh, ps[k][i].filledWh, "cell fill != reference");
                if (ps[k][i].reported) _eq(p.deliveredWh, ps[k][i].deliveredWh, "metered energy != reading");
            }
        }
    }

    /// In every cleared interval the buy positions' fills and the sell positions' fills
    /// both add up to the interval's volume, exactly (rationing loses no Wh).
    function invariant_clearedVolumeBalances() public view {
        uint64[] memory ts = handler.intervals();
        for (uint256 k = 0; k < ts.length; ++k) {
            uint256 bought;
            uint256 sold;
            for (uint256 i = 0; i < ids.length; ++i) {
                IClearingPool.Position memory p = pool.positionOf(ts[k], ids[i]);
                if (p.side == Side.Buy) bought += p.filledWh;
                else sold += p.filledWh;
            }
            _eq(bought, sold, "buy fills != sell fills");
            _eq(bought, pool.intervalOf(ts[k]).volumeWh, "fills != interval volume");
        }
    }

    /// A buyer never pays more than its limits allow for what it was filled:
    /// paid <= sum over its orders of limit * fill / 1000, with no tolerance (payments round
    /// down, escrows up), and never more than its escrow.
    function invariant_bidNeverPaysAboveLimit() public view {
        (uint64[] memory ts,, PoolHandler.PositionGhost[][] memory ps) = handler.ghosts();
        for (uint256 k = 0; k < ts.length; ++k) {
            for (uint256 i = 0; i < ids.length; ++i) {
                PoolHandler.PositionGhost memory p = ps[k][i];
                if (!p.claimed || !p.isBuy) continue;
                _le(uint256(p.paid) * 1000, p.limitValue, "buyer paid above its limits");
                _le(p.paid, p.escrow, "buyer paid above its escrow");
            }
        }
    }

    /// A seller is never paid less than its limits for the energy it is paid for.
    /// Under the imbalance rule a seller that metered q is paid for e = q * E / Qs (E = min(Qs,
    /// Qb)); its limits are worth L * e / filled, L = sum of limit * fill over its orders.
    /// Tolerance, from the roundings ClearingPool._payOut documents: each of the B paying
    /// buyers rounds its payment down (loses < 1 unit), so the pot is > P * E / 1000 - B, and
    /// the sellers share it pro rata (a seller bears < B * q / Qs of that) with cumulative
    /// rounding (< 1 unit more). So received > L * e / (1000 * filled) - B * q / Qs - 1: at most
    /// one unit per position of the interval. Multiplied out to stay in integers.
    function invariant_askNeverReceivesBelowLimit() public view {
        (uint64[] memory ts, PoolHandler.IntervalGhost[] memory gs, PoolHandler.PositionGhost[][] memory ps) =
            handler.ghosts();
        for (uint256 k = 0; k < ts.length; ++k) {
            (uint256 qs, uint256 qb) = _imbalance(ps[k]);
            uint256 traded = qs < qb ? qs : qb;
            for (uint256 i = 0; i < ids.length; ++i) {
                PoolHandler.PositionGhost memory p = ps[k][i];
                if (!p.claimed || p.isBuy || !p.reported || p.deliveredWh == 0) continue;
                uint256 q = p.deliveredWh;
                _ge(
                    uint256(p.received) * p.filledWh * qs * 1000 + (gs[k].scheduledBuyers * q + qs) * 1000 * p.filledWh,
                    p.limitValue * q * traded,
                    "seller paid below its limits for the energy it is paid for"
                );
            }
        }
    }

    /// Money follows metered energy: a seller gets at most the clearing price for what it
    /// delivered (capped at its schedule) plus one unit of rounding (its share of the pot is
    /// q * pot / Qs rounded either way, and the pot is at most P * E / 1000 <= P * Qs / 1000),
    /// and nothing without a reading; a buyer pays at most the price for what it took (its
    /// whole fill when it sent no reading, by the rule). Unfilled or void positions move nothing.
    function invariant_noPaymentForUndeliveredEnergy() public view {
        (uint64[] memory ts, PoolHandler.IntervalGhost[] memory gs, PoolHandler.PositionGhost[][] memory ps) =
            handler.ghosts();
        for (uint256 k = 0; k < ts.length; ++k) {
            PoolHandler.IntervalGhost memory g = gs[k];
            for (uint256 i = 0; i < ids.length; ++i) {
                PoolHandler.PositionGhost memory p = ps[k][i];
                if (!p.claimed) continue;
                if (!g.cleared || p.filledWh == 0) {
                    _eq(uint256(p.paid) + p.received, 0, "money moved for an unfilled or void position");
                } else if (p.isBuy) {
                    uint256 q = p.reported ? p.deliveredWh : p.filledWh;
                    _le(uint256(p.paid) * 1000, g.price * q, "buyer paid for energy it did not take");
                } else {
                    uint256 q = p.reported ? p.deliveredWh : 0;
                    _lt(uint256(p.received) * 1000, g.price * q + 1000, "seller paid for energy it did not deliver");
                }
            }
            _le(g.received, g.paid, "sellers received more than buyers paid");
        }
    }

    /// Every payout is exactly what the documented imbalance rule gives, recomputed from the
    /// ghosts (reference price, metered energy, claim order).
    function invariant_payoutsFollowImbalanceRule() public view {
        (uint64[] memory ts,, PoolHandler.PositionGhost[][] memory ps) = handler.ghosts();
        for (uint256 k = 0; k < ts.length; ++k) {
            for (uint256 i = 0; i < ids.length; ++i) {
                PoolHandler.PositionGhost memory p = ps[k][i];
                if (p.claimed) _eq(p.isBuy ? p.paid : p.received, p.expected, "payout != imbalance rule");
            }
        }
    }

    /// What must be refused was refused with the right error: bounds other than the
    /// reference's, claims before settlement or by sellers before every buyer paid, claims of
    /// an open interval, a second cancellation.
    function invariant_poolRefusesWhatItMust() public view {
        assertEq(handler.violations(), 0, handler.lastViolation());
    }

    /// After every settlement window has passed and everything is claimed, no money is stuck:
    /// no escrow stays locked, every pot is paid out, and the properties a claim can touch
    /// still hold (claims change no fill or escrow record, so those checks are not repeated).
    function afterInvariant() public virtual {
        handler.finalize();
        for (uint256 i = 0; i < ids.length; ++i) {
            (, uint256 l) = wallets.balanceOf(ids[i]);
            _eq(l, 0, "escrow left locked after every claim");
        }
        _eq(wallets.marketBalance(address(pool)), 0, "money left in the pool after every claim");
        uint64[] memory ts = handler.intervals();
        for (uint256 k = 0; k < ts.length; ++k) {
            IClearingPool.Interval memory s = pool.intervalOf(ts[k]);
            _eq(s.paidOut, s.pot, "pot not paid out");
            _eq(s.buyersUnpaid, 0, "buyers left unpaid");
        }
        invariant_conservation();
        invariant_cellBalanceFollowsLedger();
        invariant_marketBalanceEqualsUnpaidPots();
        invariant_bidNeverPaysAboveLimit();
        invariant_askNeverReceivesBelowLimit();
        invariant_noPaymentForUndeliveredEnergy();
        invariant_payoutsFollowImbalanceRule();
        invariant_poolRefusesWhatItMust();
    }

    /// Qs and Qb of the imbalance rule from one interval's ghosts: sellers' metered energy (0
    /// without a reading), buyers' metered energy (their whole fill without a reading).
    function _imbalance(PoolHandler.PositionGhost[] memory row) internal pure returns (uint256 qs, uint256 qb) {
        for (uint256 i = 0; i < row.length; ++i) {
            if (row[i].filledWh == 0) continue;
            if (row[i].isBuy) qb += row[i].reported ? row[i].deliveredWh : row[i].filledWh;
            else if (row[i].reported) qs += row[i].deliveredWh;
        }
    }

    // The loops below assert hundreds of times per call; comparing in Solidity first and
    // calling the assertion cheatcode only on a mismatch (for its message) keeps a campaign
    // several times faster.
    function _eq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) assertEq(a, b, what);
    }

    function _eq(bool a, bool b, string memory what) internal pure {
        if (a != b) assertEq(a, b, what);
    }

    function _le(uint256 a, uint256 b, string memory what) internal pure {
        if (a > b) assertLe(a, b, what);
    }

    function _lt(uint256 a, uint256 b, string memory what) internal pure {
        if (a >= b) assertLt(a, b, what);
    }

    function _ge(uint256 a, uint256 b, string memory what) internal pure {
        if (a < b) assertGe(a, b, what);
    }
}
