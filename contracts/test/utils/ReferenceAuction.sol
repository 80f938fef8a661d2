// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClearingPool} from "../../src/interfaces/IClearingPool.sol";
import {Side} from "../../src/types/CellTypes.sol";

/// @notice A plain, sort-based reference for the pool's clearing rule, written independently
/// of {Clearing}: sort the bids down and the asks up, evaluate the curves at every price where
/// they can change, take the lowest and highest clearing prices and their midpoint, then fill.
/// It is slow (quadratic) and only for tests.
library ReferenceAuction {
    struct Book {
        bool[] isBuy;
        uint256[] price;
        uint256[] energy;
        bool[] live;
    }

    struct Outcome {
        uint256 priceLow;
        uint256 priceHigh;
        uint256 price;
        uint256 volume;
        uint256[] fills;
    }

    /// @notice The book of an interval's orders; `live[i]` is false for a cancelled order.
    function bookOf(IClearingPool.Order[] memory orders, bool[] memory live) internal pure returns (Book memory b) {
        uint256 n = orders.length;
        b = Book({isBuy: new bool[](n), price: new uint256[](n), energy: new uint256[](n), live: live});
        for (uint256 i = 0; i < n; ++i) {
            b.isBuy[i] = orders[i].side == Side.Buy;
            b.price[i] = orders[i].limitPrice;
            b.energy[i] = orders[i].energyWh;
        }
    }

    function solve(Book memory book) internal pure returns (Outcome memory out) {
        uint256 n = book.price.length;
        out.fills = new uint256[](n);
        (uint256[] memory bids, uint256[] memory asks) = _sorted(book);
        if (bids.length == 0 || asks.length == 0 || book.price[bids[0]] < book.price[asks[0]]) return out;

        // The curves change only at a limit or one above it; the clearing set's ends sit at a
        // limit, one above, or one below.
        uint256[] memory candidates = new uint256[](3 * n + 1);
        uint256 k;
        for (uint256 i = 0; i < n; ++i) {
            if (!book.live[i]) continue;
            candidates[k++] = book.price[i];
            candidates[k++] = book.price[i] + 1;
            if (book.price[i] > 0) candidates[k++] = book.price[i] - 1;
        }
        bool found;
        for (uint256 i = 0; i < k; ++i) {
            uint256 p = candidates[i];
            if (!_clears(book, bids, asks, p)) continue;
            if (!found || p < out.priceLow) out.priceLow = p;
            if (!found || p > out.priceHigh) out.priceHigh = p;
            found = true;
        }
        require(found, "reference: no clearing price");
        out.price = (out.priceLow + out.priceHigh) / 2;
        _fill(book, bids, asks, out);
    }

    /// @dev Fills: in the money in full, at the price pro rata in submission order.
    function _fill(Book memory book, uint256[] memory bids, uint256[] memory asks, Outcome memory out) private pure {
        (uint256 dAbove, uint256 dAt, uint256 sBelow, uint256 sAt) = _curves(book, bids, asks, out.price);
        out.volume = dAbove + dAt < sBelow + sAt ? dAbove + dAt : sBelow + sAt;
        uint256 buyBefore;
        uint256 sellBefore;
        for (uint256 i = 0; i < book.price.length; ++i) {
            if (!book.live[i]) continue;
            uint256 p = book.price[i];
            uint256 e = book.energy[i];
            if (book.isBuy[i]) {
                if (p > out.price) {
                    out.fills[i] = e;
                } else if (p == out.price) {
                    out.fills[i] = _share(buyBefore, e, out.volume - dAbove, dAt);
                    buyBefore += e;
                }
            } else if (p < out.price) {
                out.fills[i] = e;
            } else if (p == out.price) {
                out.fills[i] = _share(sellBefore, e, out.volume - sBelow, sAt);
                sellBefore += e;
            }
        }
    }

    function _share(uint256 before, uint256 e, uint256 toShare, uint256 total) private pure returns (uint256) {
        return ((before + e) * toShare) / total - (before * toShare) / total;
    }

    function _clears(Book memory book, uint256[] memory bids, uint256[] memory asks, uint256 p)
        private
        pure
        returns (bool)
    {
        (uint256 dAbove, uint256 dAt, uint256 sBelow, uint256 sAt) = _curves(book, bids, asks, p);
        return dAbove + dAt >= sBelow && sBelow + sAt >= dAbove;
    }

    /// @dev Walks the sorted lists from the best price inwards.
    function _curves(Book memory book, uint256[] memory bids, uint256[] memory asks, uint256 p)
        private
        pure
        returns (uint256 dAbove, uint256 dAt, uint256 sBelow, uint256 sAt)
    {
        for (uint256 i = 0; i < bids.length && book.price[bids[i]] >= p; ++i) {
            if (book.price[bids[i]] > p) dAbove += book.energy[bids[i]];
            else dAt += book.energy[bids[i]];
        }
        for (uint256 i = 0; i < asks.length && book.price[asks[i]] <= p; ++i) {
            if (book.price[asks[i]] < p) sBelow += book.energy[asks[i]];
            else sAt += book.energy[asks[i]];
        }
    }

    /// @dev Insertion sort of the live orders' indices: bids by price down, asks by price up.
    function _sorted(Book memory book) private pure returns (uint256[] memory bids, uint256[] memory asks) {
        uint256 n = book.price.length;
        uint256 nb;
        uint256 na;
        for (uint256 i = 0; i < n; ++i) {
            if (!book.live[i]) continue;
            if (book.isBuy[i]) ++nb;
            else ++na;
        }
        bids = new uint256[](nb);
        asks = new uint256[](na);
        nb = 0;
        na = 0;
        for (uint256 i = 0; i < n; ++i) {
            if (!book.live[i]) continue;
            if (book.isBuy[i]) {
                uint256 j = nb++;
                while (j > 0 && book.price[bids[j - 1]] < book.price[i]) {
                    bids[j] = bids[j - 1];
                    --j;
                }
                bids[j] = i;
            } else {
                uint256 j = na++;
                while (j > 0 && book.price[asks[j - 1]] > book.price[i]) {
                    asks[j] = asks[j - 1];
                    --j;
                }
                asks[j] = i;
            }
        }
    }
}
