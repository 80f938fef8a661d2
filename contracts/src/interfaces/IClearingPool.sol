// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CellType, Side} from "../types/CellTypes.sol";

/// @title Clearing pool: a uniform-price double auction per delivery interval
/// @notice Interval t delivers during [t*L, (t+1)*L), L = `intervalSeconds`.
/// - Orders, signed EIP-712 by the cell's agent, are accepted until gate closure, t*L - lead.
///   A buy order locks ceil(limitPrice * energyWh / 1000) in the cell's wallet.
/// - Anyone clears t between gate closure and delivery start, naming the ends of the
///   clearing-price interval and handing in every accepted order, in submission order. The
///   pool checks the set against the hash chain it kept and the prices in one pass; the price
///   is the midpoint of the ends. Each scheduled cell gets a `CellScheduled` event.
/// - After delivery ends, anyone hands in meter readings signed by a meter key of the cell
///   (`settle`), until the settlement window ends.
/// - When every scheduled cell has a reading, or the window has ended, anyone pays out
///   (`claim`): buyers first, then sellers. An interval nobody cleared before delivery
///   started is void, and its escrow goes back.
/// docs/contracts.md states the imbalance rule and docs/rounding.md every rounding.
interface IClearingPool {
    /// @notice An order, as the cell's agent signs it (EIP-712 type `Order`).
    struct Order {
        uint256 cell;
        uint64 interval;
        Side side;
        uint64 energyWh;
        /// Settlement-token base units per kWh.
        uint96 limitPrice;
        /// The order's place among the cell's orders for this interval: 0, 1, 2 ... (at most
        /// 15) in the order they are submitted; a nonce cancelled before its order was
        /// submitted is skipped. A replay reuses a nonce and is refused.
        uint32 nonce;
        /// Unix time after which the order may no longer be submitted.
        uint64 expiry;
    }

    /// @notice An order with its signature in EIP-2098 compact form.
    struct SignedOrder {
        Order order;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice An interval reading, signed EIP-712 by a meter key (type `MeterReading`).
    struct MeterReading {
        address meter;
        uint256 cell;
        uint64 interval;
        /// Energy in the interval (grid to cell, and cell to grid), Wh.
        uint64 importWh;
        uint64 exportWh;
        /// The meter's cumulative counters at the end of the interval, Wh.
        uint64 importCumWh;
        uint64 exportCumWh;
        /// The meter's reading counter, strictly increasing per meter.
        uint64 seq;
    }

    struct SignedReading {
        MeterReading reading;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice The pool's record of one interval.
    struct Interval {
        bytes32 orderChain;
        uint32 orderCount;
        bool cleared;
        uint96 price;
        uint40 volumeWh;
        uint32 scheduledCells;
        uint32 reportedCells;
        uint32 buyersUnpaid;
        uint40 sellDeliveredWh;
        uint40 buyDeliveredWh;
        uint40 buyReportedScheduledWh;
        uint40 sellClaimedWh;
        uint128 pot;
        uint128 paidOut;
    }

    /// @notice One cell's stake in one interval.
    struct Position {
        uint96 escrow;
        uint40 orderedWh;
        uint40 filledWh;
        uint40 deliveredWh;
        uint16 cancelMask;
        uint8 orderCount;
        Side side;
        uint8 flags;
    }

    event OrderSubmitted(
        uint64 indexed interval,
        uint256 indexed cell,
        uint32 nonce,
        Side side,
        uint64 energyWh,
        uint96 limitPrice,
        uint64 expiry
    );
    event OrderCancelled(uint64 indexed interval, uint256 indexed cell, uint32 nonce);
    event IntervalCleared(
        uint64 indexed interval, uint96 price, uint64 volumeWh, uint32 orderCount, uint32 scheduledCells
    );
    /// @notice The schedule the grid follows: the cell's net energy in the interval.
    event CellScheduled(uint64 indexed interval, uint256 indexed cell, Side side, uint64 energyWh);
    event ReadingAccepted(
        uint64 indexed interval,
        uint256 indexed cell,
        address indexed meter,
        uint64 seq,
        uint64 importWh,
        uint64 exportWh,
        uint64 deliveredWh
    );
    /// @notice Money moved for a cell: a buyer paid `amount` and got `refund` back; a seller
    /// received `amount`. `meteredWh` is the energy counted (see the imbalance rule).
    event PositionSettled(
        uint64 indexed interval, uint256 indexed cell, Side side, uint64 meteredWh, uint256 amount, uint256 refund
    );

    error PoolGateClosed(uint64 interval, uint256 gateClosure);
    error PoolOrderExpired(uint256 cell, uint32 nonce, uint64 expiry);
    error PoolInvalidSignature(uint256 index);
    error PoolNotAgent(uint256 cell, address signer);
    error PoolCellNotConnected(uint256 cell);
    error PoolRoleNotAllowed(uint256 cell, CellType cellType, Side side);
    error PoolZeroEnergy(uint256 cell, uint32 nonce);
    error PoolEnergyOverLimit(uint256 cell, uint256 energyWh, uint256 limitWh);
    error PoolBadNonce(uint256 cell, uint64 interval, uint32 nonce, uint32 expected);
    error PoolOrderIsCancelled(uint256 cell, uint64 interval, uint32 nonce);
    error PoolSideConflict(uint256 cell, uint64 interval, Side side);
    error PoolTooManyOrders(uint64 interval, uint256 max);
    error PoolNotCellController(uint256 cell, address caller);
    error PoolGateOpen(uint64 interval, uint256 gateClosure);
    error PoolClearingTooLate(uint64 interval, uint256 deliveryStart);
    error PoolAlreadyCleared(uint64 interval);
    error PoolOrderSetMismatch(uint64 interval, uint256 ordersGiven, uint256 ordersAccepted);
    error PoolPriceNotClearing(uint64 interval, uint256 priceLow, uint256 priceHigh);
    error PoolNotCleared(uint64 interval);
    error PoolDeliveryNotEnded(uint64 interval, uint256 deliveryEnd);
    error PoolSettlementWindowClosed(uint64 interval, uint256 windowEnd);
    error PoolMeterNotInCell(address meter, uint256 cell);
    error PoolNothingScheduled(uint64 interval, uint256 cell);
    error PoolSettlementPending(uint64 interval, uint32 reportedCells, uint32 scheduledCells, uint256 windowEnd);
    error PoolBuyersUnpaid(uint64 interval, uint32 buyersUnpaid);
    error PoolNoPosition(uint64 interval, uint256 cell);
    error PoolIntervalOpen(uint64 interval);

    /// @notice Accepts a batch of signed orders; any invalid order reverts the whole batch.
    function submitOrders(SignedOrder[] calldata orders) external;

    /// @notice Takes order `nonce` of `cell` out of interval `interval` (or forbids it, when
    /// not yet submitted). Agent or owner, before gate closure. Its escrow comes back when
    /// the cell's position is claimed.
    function cancelOrder(uint256 cell, uint64 interval, uint32 nonce) external;

    /// @notice Clears an interval. See the contract notice.
    /// @param orders Every accepted order of the interval, in submission order.
    function clear(uint64 interval, uint96 priceLow, uint96 priceHigh, Order[] calldata orders) external;

    /// @notice Records signed meter readings of scheduled cells. A cell that already has a
    /// reading for the interval is skipped (idempotent).
    function settle(SignedReading[] calldata readings) external;

    /// @notice Pays out the given cells' positions of an interval; a position already paid is
    /// skipped (idempotent).
    function claim(uint64 interval, uint256[] calldata cells) external;

    function intervalOf(uint64 interval) external view returns (Interval memory);
    function positionOf(uint64 interval, uint256 cell) external view returns (Position memory);
    function hashOrder(Order calldata order) external view returns (bytes32);
    function hashReading(MeterReading calldata reading) external view returns (bytes32);
    function domainSeparator() external view returns (bytes32);
    /// @return gateClosure, deliveryStart, deliveryEnd, windowEnd of interval `interval`.
    function timesOf(uint64 interval) external view returns (uint256, uint256, uint256, uint256);
}
