// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClearingPool} from "../src/interfaces/IClearingPool.sol";
import {Clearing} from "../src/libraries/Clearing.sol";
import {CellType, Side} from "../src/types/CellTypes.sol";
import {PoolFixture} from "./utils/PoolFixture.sol";
import {ReferenceAuction} from "./utils/ReferenceAuction.sol";

/// @notice The pool's one-pass clearing against the sort-based {ReferenceAuction}, on random
/// books whose prices sit in a band a few units wide, so ties and marginal orders are the
/// rule rather than the exception: same price, same volume, same fill for every cell (and,
/// for the library alone, for every order); and no bounds but the reference's are accepted.
contract ClearingDifferentialTest is PoolFixture {
    /// Cells that only buy, only sell, and that may take either side (one per interval).
    CellKeys[] internal buyers;
    CellKeys[] internal sellers;
    CellKeys[] internal prosumers;

    /// `gap` lifts every bid's price, so bids sit above asks. `shape` % 4: 0 or 2 random
    /// energy; 1 energy quantized to 100, 200 or 300 Wh; 3 bid/ask pairs of equal energy,
    /// every bid above every ask, nothing cancelled.
    /// The last two make cumulative demand and supply meet exactly, which is what opens a
    /// range of clearing prices (low < high) where the midpoint rule matters.
    struct Params {
        uint256 seed;
        uint256 count;
        uint256 base;
        uint256 span;
        uint256 maxEnergy;
        uint256 cancelPercent;
        uint256 gap;
        uint256 shape;
    }

    /// Per cell, in the interval being built: side taken (0 none, 1 buy, 2 sell), orders, Wh.
    struct Use {
        uint8 side;
        uint32 orders;
        uint256 energy;
    }

    function setUp() public override {
        super.setUp();
        for (uint256 i = 0; i < 4; ++i) {
            buyers.push(newCell(CellType.PassiveConsumer));
            sellers.push(newCell(CellType.LoadFollowingGenerator));
        }
        prosumers.push(newCell(CellType.Prosumer));
        prosumers.push(newCell(CellType.ConsumerWithGeneration));
    }

    function testFuzz_clear_matchesReference(
        uint256 seed,
        uint256 count,
        uint256 base,
        uint256 span,
        uint256 maxEnergy,
        uint256 cancelPercent,
        uint256 shape
    ) public {
        Params memory a = _bound(Params(seed, count, base, span, maxEnergy, cancelPercent, shape >> 8, shape));
        uint64 t = nextInterval();
        (IClearingPool.Order[] memory os, CellKeys[] memory who) = _book(t, a);
        _submit(os, who);
        bool[] memory live = _cancel(t, os, who, a);
        warpToGateClosure(t);

        ReferenceAuction.Outcome memory out = ReferenceAuction.solve(ReferenceAuction.bookOf(os, live));
        _assertOtherBoundsRefused(t, os, out);
        pool.clear(t, uint96(out.priceLow), uint96(out.priceHigh), os);

        IClearingPool.Interval memory s = pool.intervalOf(t);
        assertTrue(s.cleared, "cleared");
        assertEq(s.price, out.price, "price");
        assertEq(s.volumeWh, out.volume, "volume");
        _assertCellFills(t, os, out);
    }

    /// The library alone, order by order: the reference's bounds pass, every other pair
    /// near them fails, and each order's fill (marginal orders sharing in submission order,
    /// as the pool does) equals the reference's.
    function testFuzz_clearingLibrary_matchesReferencePerOrder(
        uint256 seed,
        uint256 count,
        uint256 base,
        uint256 span,
        uint256 maxEnergy,
        uint256 shift
    ) public pure {
        Params memory a = _bound(Params(seed, count, base, span, maxEnergy, 0, shift >> 16, shift >> 24));
        ReferenceAuction.Book memory b = _randomBook(a);
        ReferenceAuction.Outcome memory out = ReferenceAuction.solve(b);

        (bool ok, Clearing.Result memory r) = _finish(b, out.priceLow, out.priceHigh);
        assertTrue(ok, "reference bounds refused");
        assertEq(r.price, out.price, "price");
        assertEq(r.volume, out.volume, "volume");
        uint256 buyBefore;
        uint256 sellBefore;
        for (uint256 i = 0; i < b.price.length; ++i) {
            if (!b.live[i]) continue;
            uint256 f = Clearing.fill(r, b.isBuy[i], b.price[i], b.energy[i], b.isBuy[i] ? buyBefore : sellBefore);
            if (b.price[i] == r.price) {
                if (b.isBuy[i]) buyBefore += b.energy[i];
                else sellBefore += b.energy[i];
            }
            assertEq(f, out.fills[i], string.concat("fill of order ", vm.toString(i)));
        }

        // Any other pair within 3 of the reference's ends.
        uint256 dl = shift % 7;
        uint256 dh = (shift >> 8) % 7;
        if (dl == 3 && dh == 3) dh = 4;
        if (out.priceLow + dl < 3 || out.priceHigh + dh < 3) return;
        (ok,) = _finish(b, out.priceLow + dl - 3, out.priceHigh + dh - 3);
        assertFalse(ok, "bounds other than the reference's accepted");
    }

    function _bound(Params memory a) internal pure returns (Params memory) {
        a.count = bound(a.count, 0, 40);
        a.base = bound(a.base, 0, 200_000);
        a.span = bound(a.span, 1, 6);
        a.maxEnergy = bound(a.maxEnergy, 1, 1500);
        a.cancelPercent = bound(a.cancelPercent, 0, 40);
        a.gap = bound(a.gap, 0, 8);
        if (a.shape % 4 == 3) {
            // Pairs: every bid above every ask and no cancellation, so the curves meet on a
            // vertical stretch and the clearing prices form a range.
            a.gap = a.span + a.gap % 3;
            a.cancelPercent = 0;
        }
        return a;
    }

    function _draw(Params memory a, uint256 i) internal pure returns (bool isBuy, uint256 price, uint256 energy) {
        uint256 r = uint256(keccak256(abi.encode(a.seed, i)));
        uint256 shape = a.shape % 4;
        isBuy = shape == 3 ? i % 2 == 0 : r % 2 == 0;
        price = a.base + (r >> 8) % a.span + (isBuy ? a.gap : 0);
        if (shape == 1) {
            energy = 100 * (1 + (r >> 64) % 3);
        } else if (shape == 3) {
            energy = 1 + uint256(keccak256(abi.encode(a.seed, i / 2))) % a.maxEnergy;
        } else {
            energy = 1 + (r >> 64) % a.maxEnergy;
        }
    }

    /// Random orders, each given to a cell that may take its side in this interval (skipped
    /// when none can).
    function _book(uint64 t, Params memory a)
        internal
        view
        returns (IClearingPool.Order[] memory os, CellKeys[] memory who)
    {
        os = new IClearingPool.Order[](a.count);
        who = new CellKeys[](a.count);
        Use[] memory uses = new Use[](buyers.length + sellers.length + prosumers.length);
        uint256 n;
        for (uint256 i = 0; i < a.count; ++i) {
            (bool isBuy, uint256 price, uint256 energy) = _draw(a, i);
            (bool found, uint256 slot) =
                _cellFor(uses, isBuy, energy, uint256(keccak256(abi.encode(a.seed, i, "cell"))));
            if (!found) continue;
            CellKeys memory k = _keysOf(slot);
            Use memory u = uses[slot];
            os[n] = order(k.id, t, isBuy ? Side.Buy : Side.Sell, uint64(energy), uint96(price), u.orders);
            who[n] = k;
            u.side = isBuy ? 1 : 2;
            u.orders += 1;
            u.energy += energy;
            ++n;
        }
        assembly {
            mstore(os, n)
            mstore(who, n)
        }
    }

    /// Slots: buyers, then sellers, then prosumers. Tries the side's cells from a random one.
    function _cellFor(Use[] memory uses, bool isBuy, uint256 energy, uint256 r) internal view returns (bool, uint256) {
        uint256 own = isBuy ? buyers.length : sellers.length;
        uint256 candidates = own + prosumers.length;
        uint256 limitWh = (uint256(LIMIT_W) * INTERVAL) / 3600;
        for (uint256 j = 0; j < candidates; ++j) {
            uint256 c = (r + j) % candidates;
            uint256 slot = c < own ? (isBuy ? c : buyers.length + c) : buyers.length + sellers.length + c - own;
            Use memory u = uses[slot];
            if (u.side != 0 && u.side != (isBuy ? 1 : 2)) continue;
            if (u.orders >= 16 || u.energy + energy > limitWh) continue;
            return (true, slot);
        }
        return (false, 0);
    }

    function _keysOf(uint256 slot) internal view returns (CellKeys memory) {
        if (slot < buyers.length) return buyers[slot];
        slot -= buyers.length;
        if (slot < sellers.length) return sellers[slot];
        return prosumers[slot - sellers.length];
    }

    function _submit(IClearingPool.Order[] memory os, CellKeys[] memory who) internal {
        IClearingPool.SignedOrder[] memory batch = new IClearingPool.SignedOrder[](os.length);
        for (uint256 i = 0; i < os.length; ++i) {
            batch[i] = sign(who[i].agentKey, os[i]);
        }
        pool.submitOrders(batch);
    }

    function _cancel(uint64 t, IClearingPool.Order[] memory os, CellKeys[] memory who, Params memory a)
        internal
        returns (bool[] memory live)
    {
        live = new bool[](os.length);
        for (uint256 i = 0; i < os.length; ++i) {
            live[i] = uint256(keccak256(abi.encode(a.seed, i, "cancel"))) % 100 >= a.cancelPercent;
            if (live[i]) continue;
            vm.prank(who[i].agent);
            pool.cancelOrder(os[i].cell, t, os[i].nonce);
        }
    }

    function _randomBook(Params memory a) internal pure returns (ReferenceAuction.Book memory b) {
        uint256 n = a.count;
        b = ReferenceAuction.Book({
            isBuy: new bool[](n), price: new uint256[](n), energy: new uint256[](n), live: new bool[](n)
        });
        for (uint256 i = 0; i < n; ++i) {
            (b.isBuy[i], b.price[i], b.energy[i]) = _draw(a, i);
            b.live[i] = a.shape % 4 == 3 || uint256(keccak256(abi.encode(a.seed, i, "live"))) % 5 != 0;
        }
    }

    function _finish(ReferenceAuction.Book memory b, uint256 low, uint256 high)
        internal
        pure
        returns (bool, Clearing.Result memory)
    {
        Clearing.Book memory book = Clearing.start(low, high);
        for (uint256 i = 0; i < b.price.length; ++i) {
            if (b.live[i]) Clearing.add(book, b.isBuy[i], b.price[i], b.energy[i]);
        }
        return Clearing.finish(book);
    }

    /// Each neighbour of the reference's bounds (one end moved by one, or both) is refused
    /// with PoolPriceNotClearing.
    function _assertOtherBoundsRefused(uint64 t, IClearingPool.Order[] memory os, ReferenceAuction.Outcome memory out)
        internal
    {
        uint256 lo = out.priceLow;
        uint256 hi = out.priceHigh;
        if (lo > 0) _assertRefused(t, os, lo - 1, hi);
        _assertRefused(t, os, lo + 1, hi);
        _assertRefused(t, os, lo, hi + 1);
        if (hi > 0) _assertRefused(t, os, lo, hi - 1);
        if (lo > 0) _assertRefused(t, os, lo - 1, hi + 1);
        _assertRefused(t, os, lo + 1, hi + 1);
    }

    function _assertRefused(uint64 t, IClearingPool.Order[] memory os, uint256 lo, uint256 hi) internal {
        vm.expectRevert(abi.encodeWithSelector(IClearingPool.PoolPriceNotClearing.selector, t, lo, hi));
        pool.clear(t, uint96(lo), uint96(hi), os);
    }

    /// Each cell's position holds the sum of the reference's fills of its orders; buy and
    /// sell fills both add up to the volume; the schedule names exactly the filled cells.
    function _assertCellFills(uint64 t, IClearingPool.Order[] memory os, ReferenceAuction.Outcome memory out)
        internal
        view
    {
        uint256 bought;
        uint256 sold;
        uint256 scheduled;
        uint256 scheduledBuyers;
        for (uint256 slot = 0; slot < buyers.length + sellers.length + prosumers.length; ++slot) {
            uint256 id = _keysOf(slot).id;
            uint256 want;
            bool isBuy;
            for (uint256 i = 0; i < os.length; ++i) {
                if (os[i].cell != id) continue;
                want += out.fills[i];
                isBuy = os[i].side == Side.Buy;
            }
            assertEq(pool.positionOf(t, id).filledWh, want, string.concat("fill of cell ", vm.toString(id)));
            if (want == 0) continue;
            ++scheduled;
            if (isBuy) {
                ++scheduledBuyers;
                bought += want;
            } else {
                sold += want;
            }
        }
        assertEq(bought, out.volume, "buy fills != volume");
        assertEq(sold, out.volume, "sell fills != volume");
        IClearingPool.Interval memory s = pool.intervalOf(t);
        assertEq(s.scheduledCells, scheduled, "scheduled cells");
        assertEq(s.buyersUnpaid, scheduledBuyers, "scheduled buyers");
    }
}
