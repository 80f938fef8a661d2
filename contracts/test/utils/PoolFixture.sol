// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CellRegistry} from "../../src/CellRegistry.sol";
import {CellWallets} from "../../src/CellWallets.sol";
import {ClearingPool} from "../../src/ClearingPool.sol";
import {DevnetToken} from "../../src/DevnetToken.sol";
import {IClearingPool} from "../../src/interfaces/IClearingPool.sol";
import {CellType, Side} from "../../src/types/CellTypes.sol";
import {ReferenceAuction} from "./ReferenceAuction.sol";
import {Test} from "./Test.sol";

/// @notice Deploys the TE core the way `gridcell devnet` does and offers the steps of an
/// interval: cells with keys, signed orders and readings, clearing at the reference price,
/// and the clock.
abstract contract PoolFixture is Test {
    uint256 internal constant INTERVAL = 900;
    uint256 internal constant LEAD = 300;
    uint256 internal constant WINDOW = 3600;
    uint256 internal constant MAX_ORDERS = 1200;
    /// 100 kW in both directions: 25,000 Wh per 15-minute interval.
    uint32 internal constant LIMIT_W = 100_000;
    uint256 internal constant FUNDS = 100_000e6;
    /// The standard book: asks at 0.10, bids at 0.30 per kWh (6 decimals).
    uint96 internal constant ASK = 100_000;
    uint96 internal constant BID = 300_000;

    /// Someone with no role at all.
    address internal stranger = address(0x57A2);

    DevnetToken internal token;
    CellRegistry internal registry;
    CellWallets internal wallets;
    ClearingPool internal pool;

    struct CellKeys {
        uint256 id;
        address owner;
        uint256 agentKey;
        address agent;
        uint256 meterKey;
        address meter;
    }

    uint256 private _keySeed = 0xA11CE;

    struct Two {
        CellKeys seller;
        CellKeys buyer;
        uint64 t;
        IClearingPool.Order[] orders;
    }

    function setUp() public virtual {
        vm.warp(1_800_000_000);
        token = new DevnetToken();
        registry = new CellRegistry();
        wallets = new CellWallets(token, registry, address(this));
        pool = new ClearingPool(registry, wallets, INTERVAL, LEAD, WINDOW, MAX_ORDERS);
        wallets.addMarket(address(pool));
    }

    /// @notice A connected cell with fresh agent and meter keys, funded with {FUNDS} and an
    /// unlimited daily cap.
    function newCell(CellType cellType) internal returns (CellKeys memory k) {
        return newCell(cellType, LIMIT_W, LIMIT_W, FUNDS);
    }

    function newCell(CellType cellType, uint32 importW, uint32 exportW, uint256 funds)
        internal
        returns (CellKeys memory k)
    {
        k.owner = vm.addr(++_keySeed);
        k.agentKey = ++_keySeed;
        k.agent = vm.addr(k.agentKey);
        k.meterKey = ++_keySeed;
        k.meter = vm.addr(k.meterKey);
        address[] memory meters = new address[](1);
        meters[0] = k.meter;
        k.id = registry.connect(k.owner, cellType, 0, importW, exportW, k.agent, meters);
        if (funds > 0) {
            token.faucet(k.owner, funds);
            vm.startPrank(k.owner);
            token.approve(address(wallets), funds);
            wallets.deposit(k.id, funds);
            wallets.setDailyCap(k.id, type(uint256).max);
            vm.stopPrank();
        }
    }

    /// @notice The first interval whose gate is still open at least one interval from now.
    function nextInterval() internal view returns (uint64) {
        return uint64(block.timestamp / INTERVAL + 2);
    }

    function order(uint256 cell, uint64 t, Side side, uint64 energyWh, uint96 price, uint32 nonce)
        internal
        view
        returns (IClearingPool.Order memory)
    {
        return IClearingPool.Order({
            cell: cell,
            interval: t,
            side: side,
            energyWh: energyWh,
            limitPrice: price,
            nonce: nonce,
            expiry: uint64(block.timestamp + 1 days)
        });
    }

    function sign(uint256 key, IClearingPool.Order memory o) internal view returns (IClearingPool.SignedOrder memory) {
        (bytes32 r, bytes32 vs) = vm.signCompact(key, pool.hashOrder(o));
        return IClearingPool.SignedOrder({order: o, r: r, vs: vs});
    }

    function submit(uint256 key, IClearingPool.Order memory o) internal {
        IClearingPool.SignedOrder[] memory batch = new IClearingPool.SignedOrder[](1);
        batch[0] = sign(key, o);
        pool.submitOrders(batch);
    }

    function reading(CellKeys memory k, uint64 t, uint64 importWh, uint64 exportWh, uint64 seq)
        internal
        view
        returns (IClearingPool.SignedReading memory)
    {
        IClearingPool.MeterReading memory m = IClearingPool.MeterReading({
            meter: k.meter,
            cell: k.id,
            interval: t,
            importWh: importWh,
            exportWh: exportWh,
            importCumWh: importWh,
            exportCumWh: exportWh,
            seq: seq
        });
        return signReading(k.meterKey, m, pool.hashReading(m));
    }

    /// @notice `m` signed by the meter key `key`; `digest` is its EIP-712 digest under the
    /// domain of the contract that will check it (the pool's, or the channels').
    function signReading(uint256 key, IClearingPool.MeterReading memory m, bytes32 digest)
        internal
        pure
        returns (IClearingPool.SignedReading memory)
    {
        (bytes32 r, bytes32 vs) = vm.signCompact(key, digest);
        return IClearingPool.SignedReading({reading: m, r: r, vs: vs});
    }

    function settleOne(IClearingPool.SignedReading memory r) internal {
        IClearingPool.SignedReading[] memory batch = new IClearingPool.SignedReading[](1);
        batch[0] = r;
        pool.settle(batch);
    }

    /// @notice The reference clearing of `orders` given the pool's cancellations.
    function quote(uint64 t, IClearingPool.Order[] memory orders)
        internal
        view
        returns (ReferenceAuction.Outcome memory)
    {
        bool[] memory live = new bool[](orders.length);
        for (uint256 i = 0; i < orders.length; ++i) {
            uint16 mask = pool.positionOf(t, orders[i].cell).cancelMask;
            live[i] = orders[i].nonce >= 16 || (mask & (1 << orders[i].nonce)) == 0;
        }
        return ReferenceAuction.solve(ReferenceAuction.bookOf(orders, live));
    }

    /// @notice Clears `t` at the reference's price bounds.
    function clearAtReference(uint64 t, IClearingPool.Order[] memory orders)
        internal
        returns (ReferenceAuction.Outcome memory out)
    {
        out = quote(t, orders);
        pool.clear(t, uint96(out.priceLow), uint96(out.priceHigh), orders);
    }

    function warpToGateClosure(uint64 t) internal {
        (uint256 gate,,,) = pool.timesOf(t);
        vm.warp(gate);
    }

    function warpToDeliveryEnd(uint64 t) internal {
        (,, uint256 end,) = pool.timesOf(t);
        vm.warp(end);
    }

    function warpToWindowEnd(uint64 t) internal {
        (,,, uint256 windowEnd) = pool.timesOf(t);
        vm.warp(windowEnd);
    }

    function available(uint256 cell) internal view returns (uint256 a) {
        (a,) = wallets.balanceOf(cell);
    }

    function locked(uint256 cell) internal view returns (uint256 l) {
        (, l) = wallets.balanceOf(cell);
    }

    function cells(uint256 a) internal pure returns (uint256[] memory list) {
        list = new uint256[](1);
        list[0] = a;
    }

    function cells(uint256 a, uint256 b) internal pure returns (uint256[] memory list) {
        list = new uint256[](2);
        list[0] = a;
        list[1] = b;
    }

    /// Seller sells 1000 Wh at ASK, buyer buys 1000 Wh at BID; submitted, gate still open.
    function _twoParty() internal returns (Two memory m) {
        m.seller = newCell(CellType.Prosumer);
        m.buyer = newCell(CellType.PassiveConsumer);
        m.t = nextInterval();
        m.orders =
            _list(order(m.seller.id, m.t, Side.Sell, 1000, ASK, 0), order(m.buyer.id, m.t, Side.Buy, 1000, BID, 0));
        submit(m.seller.agentKey, m.orders[0]);
        submit(m.buyer.agentKey, m.orders[1]);
    }

    function _twoPartyCleared() internal returns (Two memory m) {
        m = _twoParty();
        warpToGateClosure(m.t);
        pool.clear(m.t, ASK, BID, m.orders);
    }

    // Literal arrays for calls that take batches.

    function _batch(IClearingPool.SignedOrder memory a) internal pure returns (IClearingPool.SignedOrder[] memory b) {
        b = new IClearingPool.SignedOrder[](1);
        b[0] = a;
    }

    function _batch(IClearingPool.SignedOrder memory a, IClearingPool.SignedOrder memory c)
        internal
        pure
        returns (IClearingPool.SignedOrder[] memory b)
    {
        b = new IClearingPool.SignedOrder[](2);
        b[0] = a;
        b[1] = c;
    }

    function _list(IClearingPool.Order memory a) internal pure returns (IClearingPool.Order[] memory l) {
        l = new IClearingPool.Order[](1);
        l[0] = a;
    }

    function _list(IClearingPool.Order memory a, IClearingPool.Order memory b)
        internal
        pure
        returns (IClearingPool.Order[] memory l)
    {
        l = new IClearingPool.Order[](2);
        l[0] = a;
        l[1] = b;
    }

    function _list(IClearingPool.Order memory a, IClearingPool.Order memory b, IClearingPool.Order memory c)
        internal
        pure
        returns (IClearingPool.Order[] memory l)
    {
        l = new IClearingPool.Order[](3);
        l[0] = a;
        l[1] = b;
        l[2] = c;
    }

    function _readings(IClearingPool.SignedReading memory a, IClearingPool.SignedReading memory b)
        internal
        pure
        returns (IClearingPool.SignedReading[] memory l)
    {
        l = new IClearingPool.SignedReading[](2);
        l[0] = a;
        l[1] = b;
    }
}
