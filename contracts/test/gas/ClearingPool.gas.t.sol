// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClearingPool} from "../../src/interfaces/IClearingPool.sol";
import {CellType, Side} from "../../src/types/CellTypes.sol";
import {PoolFixture} from "../utils/PoolFixture.sol";
import {ReferenceAuction} from "../utils/ReferenceAuction.sol";

/// @notice Whole-transaction gas of the pool's hot paths, written to snapshots/ClearingPool.json.
/// Run with `forge test --isolate` so each call is its own transaction (21,000 base and
/// calldata included). docs/gas.md turns these into per-order figures.
/// Every order comes from its own cell, the costly case: each touches a fresh position.
contract ClearingPoolGasTest is PoolFixture {
    CellKeys[] internal _cells;

    function _makeCells(uint256 n) internal {
        vm.pauseGasMetering();
        for (uint256 i = 0; i < n; ++i) {
            _cells.push(newCell(CellType.Prosumer));
        }
        vm.resumeGasMetering();
    }

    /// Half buys, half sells, prices spread so that about half of each side fills and
    /// some orders are marginal.
    function _book(uint64 t, uint256 n) internal view returns (IClearingPool.Order[] memory orders) {
        orders = new IClearingPool.Order[](n);
        for (uint256 i = 0; i < n; ++i) {
            bool isBuy = i % 2 == 0;
            uint96 price = uint96(200_000 + (i % 50) * 2_000);
            orders[i] = order(_cells[i].id, t, isBuy ? Side.Buy : Side.Sell, uint64(1_000 + (i % 7) * 100), price, 0);
        }
    }

    function _signAll(IClearingPool.Order[] memory orders, uint256 from, uint256 to)
        internal
        view
        returns (IClearingPool.SignedOrder[] memory batch)
    {
        batch = new IClearingPool.SignedOrder[](to - from);
        for (uint256 i = from; i < to; ++i) {
            batch[i - from] = sign(_cells[i].agentKey, orders[i]);
        }
    }

    function _submitAll(IClearingPool.Order[] memory orders) internal {
        for (uint256 from = 0; from < orders.length; from += 100) {
            uint256 to = from + 100 > orders.length ? orders.length : from + 100;
            pool.submitOrders(_signAll(orders, from, to));
        }
    }

    function test_gas_submitOrders_batchOf100() public {
        _makeCells(100);
        uint64 t = nextInterval();
        IClearingPool.SignedOrder[] memory batch = _signAll(_book(t, 100), 0, 100);
        pool.submitOrders(batch);
        uint256 gasUsed = vm.snapshotGasLastCall("ClearingPool", "submitOrders_batchOf100");
        vm.snapshotValue("ClearingPool", "submitOrders_perOrder", gasUsed / 100);
    }

    function test_gas_submitOrders_batchOf100Buys() public {
        _submitOneSide(Side.Buy, "submitOrders_batchOf100Buys", "submitOrders_perBuyOrder");
    }

    function test_gas_submitOrders_batchOf100Sells() public {
        _submitOneSide(Side.Sell, "submitOrders_batchOf100Sells", "submitOrders_perSellOrder");
    }

    function _submitOneSide(Side side, string memory name, string memory perOrder) internal {
        _makeCells(100);
        uint64 t = nextInterval();
        IClearingPool.Order[] memory orders = _book(t, 100);
        for (uint256 i = 0; i < 100; ++i) {
            orders[i].side = side;
        }
        IClearingPool.SignedOrder[] memory batch = _signAll(orders, 0, 100);
        pool.submitOrders(batch);
        uint256 gasUsed = vm.snapshotGasLastCall("ClearingPool", name);
        vm.snapshotValue("ClearingPool", perOrder, gasUsed / 100);
    }

    function test_gas_submitOrders_single() public {
        _makeCells(1);
        uint64 t = nextInterval();
        IClearingPool.SignedOrder[] memory batch = _signAll(_book(t, 1), 0, 1);
        pool.submitOrders(batch);
        vm.snapshotGasLastCall("ClearingPool", "submitOrders_single");
    }

    function test_gas_clear_1000Orders() public {
        _clearN(1000, "clear_1000Orders", "clear_1000Orders_perOrder");
    }

    function test_gas_clear_maxOrders() public {
        _clearN(MAX_ORDERS, "clear_maxOrders", "clear_maxOrders_perOrder");
    }

    /// n cells, one order each, all submitted; the clock at gate closure; metering paused.
    function _submittedAtGate(uint256 n) internal returns (uint64 t, IClearingPool.Order[] memory orders) {
        _makeCells(n);
        t = nextInterval();
        orders = _book(t, n);
        vm.pauseGasMetering();
        _submitAll(orders);
        warpToGateClosure(t);
    }

    function _clearN(uint256 n, string memory name, string memory perOrder) internal {
        (uint64 t, IClearingPool.Order[] memory orders) = _submittedAtGate(n);
        ReferenceAuction.Outcome memory out = quote(t, orders);
        vm.resumeGasMetering();
        pool.clear(t, uint96(out.priceLow), uint96(out.priceHigh), orders);
        uint256 gasUsed = vm.snapshotGasLastCall("ClearingPool", name);
        vm.snapshotValue("ClearingPool", perOrder, gasUsed / n);
        assertGt(pool.intervalOf(t).volumeWh, 0, "the book trades");
    }

    /// Settling a cell-interval = its reading (batched in `settle`) plus its payout
    /// (batched in `claim`). 100 cells in each batch.
    function test_gas_settleAndClaim_batchOf100() public {
        uint256 n = 100;
        (uint64 t, IClearingPool.Order[] memory orders) = _submittedAtGate(n);
        ReferenceAuction.Outcome memory out = clearAtReference(t, orders);
        warpToDeliveryEnd(t);
        // Readings of the scheduled cells, buyers first (the claim needs buyers paid first).
        uint256 scheduled;
        for (uint256 i = 0; i < n; ++i) {
            if (out.fills[i] > 0) ++scheduled;
        }
        IClearingPool.SignedReading[] memory rs = new IClearingPool.SignedReading[](scheduled);
        uint256[] memory ids = new uint256[](scheduled);
        uint256 k;
        for (uint256 pass = 0; pass < 2; ++pass) {
            for (uint256 i = 0; i < n; ++i) {
                if (out.fills[i] == 0) continue;
                bool isBuy = orders[i].side == Side.Buy;
                if ((pass == 0) != isBuy) continue;
                uint64 e = uint64(out.fills[i]);
                rs[k] = reading(_cells[i], t, isBuy ? e : 0, isBuy ? 0 : e, 1);
                ids[k++] = _cells[i].id;
            }
        }
        vm.resumeGasMetering();
        pool.settle(rs);
        uint256 settleGas = vm.snapshotGasLastCall("ClearingPool", "settle_scheduledCells");
        pool.claim(t, ids);
        uint256 claimGas = vm.snapshotGasLastCall("ClearingPool", "claim_scheduledCells");
        vm.snapshotValue("ClearingPool", "settle_scheduledCellCount", scheduled);
        vm.snapshotValue("ClearingPool", "settleAndClaim_perCell", (settleGas + claimGas) / scheduled);
    }
}
