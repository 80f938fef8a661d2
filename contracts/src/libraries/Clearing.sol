// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Clearing
/// @notice One-pass verification of a uniform-price double auction (no sorting).
/// @dev Notation, for an integer price p: D(p) = buy energy with limit >= p, Ds(p) = buy energy
/// with limit > p, S(p) = sell energy with limit <= p, Ss(p) = sell energy with limit < p.
/// p is a clearing price when D(p) >= Ss(p) and S(p) >= Ds(p): at p, demand covers every sell
/// strictly in the money and supply covers every buy strictly in the money. The clearing
/// prices form one interval [pLow, pHigh] (D falls and S rises with p). Because prices are
/// integers, p - 1 is not a clearing price exactly when Ss(p) < D(p), and p + 1 is not one
/// exactly when Ds(p) < S(p) (docs/clearing.md has the proof). So a caller who names pLow and
/// pHigh can be checked in one pass over the orders, with four sums at each of the two
/// prices and at their midpoint. The price is the midpoint, rounded down: the k = 1/2 double
/// auction, which splits the surplus of the marginal pair evenly.
library Clearing {
    /// @notice The four sums at one price.
    struct Curve {
        uint256 price;
        uint256 demandAbove; // Ds(price)
        uint256 demandAt; // D(price) - Ds(price)
        uint256 supplyBelow; // Ss(price)
        uint256 supplyAt; // S(price) - Ss(price)
    }

    /// @notice The running sums of one pass.
    struct Book {
        Curve low;
        Curve mid;
        Curve high;
        uint256 maxBuyPrice;
        uint256 minSellPrice;
        bool hasBuy;
        bool hasSell;
    }

    /// @notice The outcome: the price, the matched volume and how the marginal orders share.
    struct Result {
        bool trades;
        uint256 price;
        uint256 volume;
        /// Buys with limit > price are filled in full; buys at the price share this energy.
        uint256 marginalBuyFill;
        uint256 marginalBuyEnergy;
        /// Sells with limit < price are filled in full; sells at the price share this energy.
        uint256 marginalSellFill;
        uint256 marginalSellEnergy;
    }

    /// @notice Starts a pass for the bounds the caller named.
    function start(uint256 priceLow, uint256 priceHigh) internal pure returns (Book memory book) {
        book.low.price = priceLow;
        book.high.price = priceHigh;
        // Cannot overflow in practice (prices are uint96); the sum is done in 256 bits.
        book.mid.price = (priceLow + priceHigh) / 2;
        book.minSellPrice = type(uint256).max;
    }

    /// @notice Adds one live order to the sums.
    function add(Book memory book, bool isBuy, uint256 limitPrice, uint256 energy) internal pure {
        if (isBuy) {
            book.hasBuy = true;
            if (limitPrice > book.maxBuyPrice) book.maxBuyPrice = limitPrice;
            _addBuy(book.low, limitPrice, energy);
            _addBuy(book.mid, limitPrice, energy);
            _addBuy(book.high, limitPrice, energy);
        } else {
            book.hasSell = true;
            if (limitPrice < book.minSellPrice) book.minSellPrice = limitPrice;
            _addSell(book.low, limitPrice, energy);
            _addSell(book.mid, limitPrice, energy);
            _addSell(book.high, limitPrice, energy);
        }
    }

    /// @notice Checks the named bounds and returns the clearing.
    /// @return ok False when the bounds are not the ends of the clearing-price interval (or,
    /// when nothing can trade, not both zero).
    function finish(Book memory book) internal pure returns (bool ok, Result memory result) {
        if (!book.hasBuy || !book.hasSell || book.maxBuyPrice < book.minSellPrice) {
            // No price matches any buy with any sell: no trade, price recorded as 0.
            return (book.low.price == 0 && book.high.price == 0, result);
        }
        if (book.low.price > book.high.price) return (false, result);
        if (!_clears(book.low) || !_clears(book.high)) return (false, result);
        // pLow - 1 is not a clearing price, and neither is pHigh + 1.
        if (book.low.supplyBelow >= book.low.demandAbove + book.low.demandAt) return (false, result);
        if (book.high.demandAbove >= book.high.supplyBelow + book.high.supplyAt) return (false, result);

        Curve memory m = book.mid;
        uint256 demand = m.demandAbove + m.demandAt;
        uint256 supply = m.supplyBelow + m.supplyAt;
        uint256 volume = demand < supply ? demand : supply;
        result.trades = volume > 0;
        result.price = m.price;
        result.volume = volume;
        // The midpoint lies in [pLow, pHigh], so it clears: demandAbove <= supply and
        // supplyBelow <= demand, hence both are <= volume and these cannot underflow.
        result.marginalBuyFill = volume - m.demandAbove;
        result.marginalBuyEnergy = m.demandAt;
        result.marginalSellFill = volume - m.supplyBelow;
        result.marginalSellEnergy = m.supplyAt;
        return (true, result);
    }

    /// @notice The energy one order gets, given the energy of the marginal orders on its side
    /// that came before it in submission order (`marginalBefore`).
    /// @dev Pro-rata rationing with cumulative rounding: order i of the marginal orders gets
    /// floor(C_i * F / M) - floor(C_{i-1} * F / M), where C is the running energy, F the energy
    /// to share and M the marginal energy. The shares add up to exactly F, each is within 1 Wh
    /// of its exact share, and none exceeds its order (F <= M).
    function fill(Result memory result, bool isBuy, uint256 limitPrice, uint256 energy, uint256 marginalBefore)
        internal
        pure
        returns (uint256)
    {
        if (!result.trades) return 0;
        if (isBuy) {
            if (limitPrice > result.price) return energy;
            if (limitPrice < result.price) return 0;
            return _share(marginalBefore, energy, result.marginalBuyFill, result.marginalBuyEnergy);
        }
        if (limitPrice < result.price) return energy;
        if (limitPrice > result.price) return 0;
        return _share(marginalBefore, energy, result.marginalSellFill, result.marginalSellEnergy);
    }

    function _share(uint256 before, uint256 energy, uint256 toShare, uint256 total) private pure returns (uint256) {
        if (toShare == total) return energy;
        return ((before + energy) * toShare) / total - (before * toShare) / total;
    }

    function _clears(Curve memory c) private pure returns (bool) {
        return c.demandAbove + c.demandAt >= c.supplyBelow && c.supplyBelow + c.supplyAt >= c.demandAbove;
    }

    function _addBuy(Curve memory c, uint256 limitPrice, uint256 energy) private pure {
        if (limitPrice > c.price) c.demandAbove += energy;
        else if (limitPrice == c.price) c.demandAt += energy;
    }

    function _addSell(Curve memory c, uint256 limitPrice, uint256 energy) private pure {
        if (limitPrice < c.price) c.supplyBelow += energy;
        else if (limitPrice == c.price) c.supplyAt += energy;
    }
}
