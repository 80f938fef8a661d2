// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClearingPool} from "../src/interfaces/IClearingPool.sol";
import {CellType, Side} from "../src/types/CellTypes.sol";
import {PoolFixture} from "./utils/PoolFixture.sol";

contract SmokeTest is PoolFixture {
    function test_interval_endToEnd() public {
        CellKeys memory seller = newCell(CellType.Prosumer);
        CellKeys memory buyer = newCell(CellType.PassiveConsumer);
        uint64 t = nextInterval();
        IClearingPool.Order[] memory orders = new IClearingPool.Order[](2);
        orders[0] = order(seller.id, t, Side.Sell, 1000, 200_000, 0);
        orders[1] = order(buyer.id, t, Side.Buy, 800, 300_000, 0);
        submit(seller.agentKey, orders[0]);
        submit(buyer.agentKey, orders[1]);
        assertEq(locked(buyer.id), 240_000, "buyer escrow = 300000 * 800 / 1000");
        warpToGateClosure(t);
        clearAtReference(t, orders);
        IClearingPool.Interval memory s = pool.intervalOf(t);
        assertEq(s.price, 200_000, "excess supply: only the marginal ask clears");
        assertEq(s.volumeWh, 800, "volume");
        warpToDeliveryEnd(t);
        IClearingPool.SignedReading[] memory rs = new IClearingPool.SignedReading[](2);
        rs[0] = reading(seller, t, 0, 800, 1);
        rs[1] = reading(buyer, t, 800, 0, 1);
        pool.settle(rs);
        pool.claim(t, cells(buyer.id, seller.id));
        assertEq(available(seller.id), FUNDS + 160_000, "seller paid 800 Wh at 200000/kWh");
        assertEq(available(buyer.id), FUNDS - 160_000, "buyer paid the same");
        assertEq(locked(buyer.id), 0, "escrow released");
    }
}
