// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Clearing} from "../../src/libraries/Clearing.sol";
import {Test} from "../utils/Test.sol";

/// @notice {Clearing} alone, on books worked out by hand. Notation as in the library: D(p) buy
/// energy with limit >= p, Ds(p) with limit > p, S(p) sell energy with limit <= p, Ss(p) with
/// limit < p; p clears when D(p) >= Ss(p) and S(p) >= Ds(p).
contract ClearingTest is Test {
    struct Order {
        bool isBuy;
        uint256 price;
        uint256 energy;
    }

    Order[] internal book;

    function buy(uint256 price, uint256 energy) internal {
        book.push(Order({isBuy: true, price: price, energy: energy}));
    }

    function sell(uint256 price, uint256 energy) internal {
        book.push(Order({isBuy: false, price: price, energy: energy}));
    }

    /// One pass over `book` at the named bounds.
    function finish(uint256 low, uint256 high) internal view returns (bool ok, Clearing.Result memory result) {
        Clearing.Book memory b = Clearing.start(low, high);
        for (uint256 i = 0; i < book.length; ++i) {
            Clearing.add(b, book[i].isBuy, book[i].price, book[i].energy);
        }
        return Clearing.finish(b);
    }

    /// Every order's fill, marginal orders sharing in book order as the pool does.
    function fills(Clearing.Result memory result) internal view returns (uint256[] memory f) {
        f = new uint256[](book.length);
        uint256 buyBefore;
        uint256 sellBefore;
        for (uint256 i = 0; i < book.length; ++i) {
            Order memory o = book[i];
            f[i] = Clearing.fill(result, o.isBuy, o.price, o.energy, o.isBuy ? buyBefore : sellBefore);
            if (o.price == result.price) {
                if (o.isBuy) buyBefore += o.energy;
                else sellBefore += o.energy;
            }
        }
    }

    function assertRefused(uint256 low, uint256 high) internal view {
        (bool ok,) = finish(low, high);
        assertFalse(ok, string.concat("bounds accepted: ", vm.toString(low), "..", vm.toString(high)));
    }

    function assertFills(uint256[] memory got, uint256[] memory want) internal pure {
        assertEq(got.length, want.length, "order count");
        for (uint256 i = 0; i < want.length; ++i) {
            assertEq(got[i], want[i], string.concat("fill of order ", vm.toString(i)));
        }
    }

    function list(uint256 a, uint256 b, uint256 c, uint256 d, uint256 e) internal pure returns (uint256[] memory l) {
        l = new uint256[](5);
        (l[0], l[1], l[2], l[3], l[4]) = (a, b, c, d, e);
    }

    /// Asks 500 at 100, 600 at 200, 400 at 200; bids 700 at 300, 200 at 250. Demand is 900 up to 250.
    /// At 200: D = 900 >= Ss = 500 and S = 1500 >= Ds = 900. At 199: S = 500 < Ds = 900.
    /// At 201: D = 900 < Ss = 1500. So [200, 200]; the ask below sells 500 in full and the
    /// two asks at 200 share the other 400 pro rata: 600 * 400 / 1000 = 240 and 160.
    function test_finish_clearsAtMarginalAskWhenExcessSupply() public {
        sell(100, 500);
        sell(200, 600);
        sell(200, 400);
        buy(300, 700);
        buy(250, 200);
        (bool ok, Clearing.Result memory r) = finish(200, 200);
        assertTrue(ok, "[200, 200] clears");
        assertTrue(r.trades, "trades");
        assertEq(r.price, 200, "price");
        assertEq(r.volume, 900, "volume = all demand");
        assertEq(r.marginalSellFill, 400, "left for the asks at the price");
        assertEq(r.marginalSellEnergy, 1000, "energy of the asks at the price");
        assertFills(fills(r), list(500, 240, 160, 700, 200));
        assertRefused(199, 200);
        assertRefused(201, 201);
        assertRefused(200, 201);
        assertRefused(200, 199);
    }

    /// Bids 500 at 300, 600 at 250, 300 at 250; ask 800 at 100. At 250: D = 1400 >= Ss = 800 and
    /// S = 800 >= Ds = 500; at 249 Ds = 1400 > S; at 251 D = 500 < Ss. So [250, 250]; the bid
    /// above gets 500 and the bids at 250 share 300 pro rata: 600 * 300 / 900 = 200 and 100.
    function test_finish_clearsAtMarginalBidWhenExcessDemand() public {
        buy(300, 500);
        buy(250, 600);
        buy(250, 300);
        sell(100, 800);
        (bool ok, Clearing.Result memory r) = finish(250, 250);
        assertTrue(ok, "[250, 250] clears");
        assertEq(r.price, 250, "price");
        assertEq(r.volume, 800, "volume = all supply");
        assertEq(r.marginalBuyFill, 300, "left for the bids at the price");
        assertEq(r.marginalBuyEnergy, 900, "energy of the bids at the price");
        uint256[] memory want = new uint256[](4);
        (want[0], want[1], want[2], want[3]) = (500, 200, 100, 800);
        assertFills(fills(r), want);
        assertRefused(249, 250);
        assertRefused(250, 251);
        assertRefused(100, 300);
    }

    /// Bid 1000 at 300, ask 1000 at 100: every price in [100, 300] clears (99: S = 0 < Ds; 301:
    /// D = 0 < Ss). The price is the midpoint, 200, and both orders fill in full.
    function test_finish_takesMidpointWhenExactCross() public {
        buy(300, 1000);
        sell(100, 1000);
        (bool ok, Clearing.Result memory r) = finish(100, 300);
        assertTrue(ok, "[100, 300] clears");
        assertEq(r.price, 200, "midpoint");
        assertEq(r.volume, 1000, "volume");
        uint256[] memory f = fills(r);
        assertEq(f[0], 1000, "bid fills");
        assertEq(f[1], 1000, "ask fills");
        // Inner points clear too, but they are not the ends of the interval.
        assertRefused(101, 300);
        assertRefused(100, 299);
        assertRefused(99, 300);
        assertRefused(100, 301);
        assertRefused(200, 200);
    }

    /// [100, 301]: the midpoint 200.5 rounds down to 200.
    function test_finish_roundsMidpointDown() public {
        buy(301, 1000);
        sell(100, 1000);
        (bool ok, Clearing.Result memory r) = finish(100, 301);
        assertTrue(ok, "[100, 301] clears");
        assertEq(r.price, 200, "floor((100 + 301) / 2)");
    }

    /// Best bid 90 below best ask 100: no price matches; only (0, 0) is accepted, and
    /// nothing fills.
    function test_finish_recordsNoTradeWhenBooksDoNotCross() public {
        buy(90, 500);
        buy(80, 500);
        sell(100, 500);
        (bool ok, Clearing.Result memory r) = finish(0, 0);
        assertTrue(ok, "(0, 0) names no trade");
        assertFalse(r.trades, "no trade");
        assertEq(r.price, 0, "price recorded as 0");
        assertEq(r.volume, 0, "volume");
        uint256[] memory f = fills(r);
        for (uint256 i = 0; i < f.length; ++i) {
            assertEq(f[i], 0, "nothing fills");
        }
        assertRefused(90, 100);
        assertRefused(95, 95);
        assertRefused(0, 1);
    }

    function test_finish_recordsNoTradeWhenOneSideIsEmpty() public {
        buy(500, 100);
        (bool ok, Clearing.Result memory r) = finish(0, 0);
        assertTrue(ok, "only bids: (0, 0)");
        assertFalse(r.trades, "no trade");
        assertRefused(500, 500);
        delete book;
        (ok, r) = finish(0, 0);
        assertTrue(ok, "empty book: (0, 0)");
        assertFalse(r.trades, "no trade");
    }

    /// Both at price 0: 0 is the one clearing price (at 1, D = 0 < Ss = 100), so (0, 0) here
    /// means a trade, not the no-trade marker.
    function test_finish_tradesAtPriceZero() public {
        buy(0, 100);
        sell(0, 100);
        (bool ok, Clearing.Result memory r) = finish(0, 0);
        assertTrue(ok, "[0, 0] clears");
        assertTrue(r.trades, "trades");
        assertEq(r.volume, 100, "volume");
    }

    /// Every order at 200: bids 333, 334, 333 (1000 Wh), asks 150, 250 (400 Wh). [200, 200]
    /// (199: S = 0 < Ds = 1000; 201: D = 0 < Ss = 400). All bids are marginal and share 400:
    /// floor(333 * 0.4) = 133, floor(667 * 0.4) - 133 = 133, 400 - 266 = 134; exactly 400.
    function test_fill_rationsAllMarginalOrdersExactly() public {
        buy(200, 333);
        buy(200, 334);
        buy(200, 333);
        sell(200, 150);
        sell(200, 250);
        (bool ok, Clearing.Result memory r) = finish(200, 200);
        assertTrue(ok, "[200, 200] clears");
        assertEq(r.volume, 400, "volume");
        uint256[] memory f = fills(r);
        assertFills(f, list(133, 133, 134, 150, 250));
        assertEq(f[0] + f[1] + f[2], 400, "bids' shares add up to the volume");
    }

    /// Three 1 Wh bids share 2 Wh: 0, 1, 1 (cumulative floors 0, 1, 2): no Wh is lost to
    /// rounding, and no order gets more than it asked.
    function test_fill_cumulativeRoundingLosesNoWh() public {
        buy(50, 1);
        buy(50, 1);
        buy(50, 1);
        sell(50, 2);
        (bool ok, Clearing.Result memory r) = finish(50, 50);
        assertTrue(ok, "[50, 50] clears");
        uint256[] memory f = fills(r);
        assertEq(f[0], 0, "first share");
        assertEq(f[1], 1, "second share");
        assertEq(f[2], 1, "third share");
        assertEq(f[3], 2, "ask fills");
    }

    /// Pro-rata shares of F among marginal orders of energies e_i add up to exactly F, none
    /// exceeds its order, and each is within 1 Wh of e_i * F / M.
    function testFuzz_fill_sharesAddUpExactly(uint256 seed, uint256 count, uint256 toShare) public pure {
        count = bound(count, 1, 30);
        uint256[] memory energy = new uint256[](count);
        uint256 total;
        for (uint256 i = 0; i < count; ++i) {
            energy[i] = 1 + uint256(keccak256(abi.encode(seed, i))) % 1000;
            total += energy[i];
        }
        toShare = bound(toShare, 0, total);
        Clearing.Result memory r;
        r.trades = true;
        r.price = 100;
        r.volume = toShare;
        r.marginalBuyFill = toShare;
        r.marginalBuyEnergy = total;
        uint256 before;
        uint256 sum;
        for (uint256 i = 0; i < count; ++i) {
            uint256 f = Clearing.fill(r, true, 100, energy[i], before);
            assertLe(f, energy[i], "share above the order");
            uint256 exactFloor = energy[i] * toShare / total;
            assertTrue(f == exactFloor || f == exactFloor + 1, "share more than 1 Wh from exact");
            before += energy[i];
            sum += f;
        }
        assertEq(sum, toShare, "shares != energy to share");
    }
}
