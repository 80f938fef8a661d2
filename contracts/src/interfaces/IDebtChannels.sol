// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClearingPool} from "./IClearingPool.sol";

/// @title Debt payment channels for bilateral deals (ØNDER)
/// @notice A deal between a buyer cell and a seller cell: a price per kWh, at most
/// `maxWhPerInterval` in each interval from `firstInterval` to `lastInterval`, measured by the
/// seller's `sellerMeter`. On chain are only the opening, redemptions, the closing and disputes;
/// nothing happens here per interval.
/// - Both agents sign the deal (EIP-712 `Deal`); its typed-data digest is the channel id, so a
///   deal opens once, on one chain, in one contract. The buyer's collateral is locked in its
///   wallet, within its agent's daily cap.
/// - Off chain, after each interval, the buyer's agent signs a voucher {channel, seq,
///   cumulativeWh, cumulativeAmount}; the seller redeems the latest one whenever it likes, with
///   the meter's signed reading the voucher carries: `cumulativeWh` may not exceed what the
///   meter counted since the deal began nor what the deal allows up to the reading's interval,
///   and `cumulativeAmount` may not exceed `cumulativeWh` at the deal's price.
/// - If the buyer stops signing, the seller proves delivery with the readings alone
///   (`redeemWithReadings`): owed = min(metered, contracted) x price.
/// - Closing is cooperative (both agents sign the final amount; immediate) or unilateral: a
///   party starts it and a challenge window follows, during which newer vouchers and readings
///   still count. The window is fixed when the close starts: nothing extends it, and only the
///   two parties can start it.
/// - What the collateral cannot cover becomes the buyer's debt in the wallets: it blocks the
///   buyer's new buy orders and deals and is repaid first from its later income.
/// - A meter backs one deal at a time (deals on a meter may not overlap in time), so a reading
///   counts in one channel only and no Wh is paid twice through channels.
/// docs/channels.md has the rules, the rounding and the gas figures.
interface IDebtChannels {
    /// @notice The deal terms, as both agents sign them (EIP-712 type `Deal`).
    struct Deal {
        uint256 buyerCell;
        uint256 sellerCell;
        /// The meter whose export counter measures the deal's delivery.
        address sellerMeter;
        /// Settlement-token base units per kWh.
        uint96 pricePerKWh;
        uint64 maxWhPerInterval;
        uint64 firstInterval;
        uint64 lastInterval;
        /// Locked from the buyer's wallet at opening.
        uint96 collateral;
        /// Unix time after which the signed deal may no longer be opened.
        uint64 expiry;
        /// Tells apart two deals with the same terms.
        uint64 salt;
    }

    /// @notice What the buyer's agent owes in all so far (EIP-712 type `Voucher`).
    struct Voucher {
        bytes32 channel;
        /// Strictly increasing; the first voucher has seq 1.
        uint32 seq;
        uint64 cumulativeWh;
        uint96 cumulativeAmount;
    }

    /// @notice A voucher with the buyer agent's signature in EIP-2098 compact form, like
    /// the pool's orders and readings.
    struct SignedVoucher {
        Voucher voucher;
        bytes32 r;
        bytes32 vs;
    }

    enum Status {
        None,
        Open,
        Closing,
        Closed
    }

    /// @notice A channel's state.
    struct Channel {
        Status status;
        /// Collateral still locked for the channel.
        uint96 collateral;
        /// Paid to the seller so far.
        uint96 paid;
        /// The highest amount proven owed so far (by a voucher, readings or the final close).
        uint96 owed;
        /// Sequence number of the latest voucher accepted.
        uint32 seq;
        /// The seller meter's export counter when the deal began, as far as readings have
        /// shown it (0 = no reading yet).
        uint64 baselineCumWh;
        /// While closing: when the unilateral close settles (0 otherwise; once closed, the
        /// `ChannelClosing` event keeps it).
        uint40 closeDeadline;
        /// While closing: the interval the close started in (0 otherwise). The deal covers
        /// intervals up to the lower of this and its own last interval, as `ChannelClosing` says.
        uint64 endInterval;
        /// A pending withdrawal of collateral, and from when it may be carried out.
        uint96 withdrawalAmount;
        uint40 withdrawalAt;
    }

    /// @notice A deal opened: the schedule the grid follows for it (`maxWhPerInterval` from
    /// the seller's to the buyer's cell in each interval of [firstInterval, lastInterval]).
    event ChannelOpened(
        bytes32 indexed channel,
        uint256 indexed buyerCell,
        uint256 indexed sellerCell,
        address sellerMeter,
        uint96 pricePerKWh,
        uint64 maxWhPerInterval,
        uint64 firstInterval,
        uint64 lastInterval,
        uint96 collateral
    );
    /// @notice The buyer added collateral; `paidNow` of it went at once to the seller for
    /// what was owed and not yet covered.
    event CollateralToppedUp(bytes32 indexed channel, uint96 amount, uint96 collateral, uint96 paidNow);
    /// @notice The buyer's voucher `seq` was accepted: it owes `cumulativeAmount` in all.
    /// `paidNow` went to the seller from the collateral (0 while closing: paid at settlement).
    event VoucherAccepted(
        bytes32 indexed channel, uint32 seq, uint64 cumulativeWh, uint96 cumulativeAmount, uint96 paidNow
    );
    /// @notice Readings proved `meteredWh` delivered up to `interval`, of which `owedWh` counts
    /// (the deal's cap), worth `amount`; `paidNow` went to the seller from the collateral.
    event DeliveryProven(
        bytes32 indexed channel, uint64 interval, uint64 meteredWh, uint64 owedWh, uint96 amount, uint96 paidNow
    );
    /// @notice A party started a unilateral close; it settles at `deadline`. Delivery under
    /// the deal ends with `endInterval`.
    event ChannelClosing(bytes32 indexed channel, address indexed by, uint40 deadline, uint64 endInterval);
    /// @notice The channel closed: the seller got `paid` in all, `refunded` went back to the
    /// buyer, and `debt` became the buyer's debt (wallets' debt `debtId`).
    event ChannelClosed(
        bytes32 indexed channel, uint96 owed, uint96 paid, uint96 refunded, uint96 debt, uint256 debtId
    );
    /// @notice The buyer asked to withdraw collateral, possible from `at`.
    event WithdrawalRequested(bytes32 indexed channel, uint96 amount, uint40 at);
    /// @notice Collateral went back to the buyer's available balance.
    event CollateralWithdrawn(bytes32 indexed channel, uint96 amount, uint96 collateral);

    error ChannelExists(bytes32 channel);
    error ChannelUnknown(bytes32 channel);
    error ChannelNotOpen(bytes32 channel, Status status);
    error ChannelNotClosing(bytes32 channel, Status status);
    error ChannelDealExpired(uint64 expiry);
    error ChannelBadTerms(string reason);
    error ChannelStartsTooLate(uint64 firstInterval, uint64 currentInterval);
    error ChannelMeterBooked(address meter, uint64 bookedThrough);
    error ChannelMeterNotInCell(address meter, uint256 cell);
    error ChannelCellNotConnected(uint256 cell);
    error ChannelRoleNotAllowed(uint256 cell);
    error ChannelOverLimit(uint256 cell, uint256 maxWhPerInterval, uint256 limitWh);
    error ChannelBadSignature(uint256 length);
    error ChannelNotAgent(uint256 cell, address signer);
    error ChannelNotParty(bytes32 channel, address caller);
    error ChannelVoucherForOtherChannel(bytes32 channel, bytes32 voucherChannel);
    error ChannelStaleVoucher(bytes32 channel, uint32 seq, uint32 latestSeq);
    error ChannelSeqTooLarge(uint32 seq, uint32 max);
    error ChannelVoucherOverMetered(uint256 cumulativeWh, uint256 provenWh);
    error ChannelVoucherOverPrice(uint256 cumulativeAmount, uint256 worth);
    error ChannelNoReadings();
    error ChannelWrongMeter(address meter, address dealMeter);
    error ChannelReadingOutOfRange(uint64 interval, uint64 firstInterval, uint64 endInterval);
    error ChannelReadingInvalid(uint256 index);
    error ChannelImplausibleReading(uint256 index);
    error ChannelTooEarlyToClose(uint256 deliveryEnd);
    error ChannelWindowOpen(uint40 deadline);
    error ChannelWindowClosed(uint40 deadline);
    error ChannelFinalBelowPaid(uint96 finalAmount, uint96 paid);
    error ChannelNoWithdrawal(bytes32 channel);
    error ChannelWithdrawalNotDue(uint40 at);
    error ChannelZeroAmount();
    error ChannelAmountTooLarge(uint256 amount);
    error ChannelCloseRecordNotAtMeter(bytes32 channel, address meter);

    /// @notice Opens the channel of a deal both agents signed. Anyone may submit it. A party's
    /// agent that submits it itself may pass an empty signature for its own side: sending the
    /// transaction is its consent (the caller must then be that cell's agent key).
    /// @return channel The channel id: the deal's EIP-712 digest.
    function open(Deal calldata deal, bytes calldata buyerSignature, bytes calldata sellerSignature)
        external
        returns (bytes32 channel);

    /// @notice Adds collateral from the buyer's wallet (within its agent's daily cap). The
    /// buyer's agent or owner.
    function topUp(Deal calldata deal, uint96 amount) external;

    /// @notice Accepts the buyer's latest voucher, with the meter reading it carries, and
    /// pays the seller what it says is owed, as far as the collateral goes. Anyone may call it,
    /// while the channel is open; while it is closing (before the deadline) it works as
    /// {challenge}: the voucher counts, and is paid at settlement.
    function redeem(Deal calldata deal, SignedVoucher calldata voucher, IClearingPool.SignedReading calldata reading)
        external;

    /// @notice The evidence path: pays the seller min(metered, contracted) x price proven by
    /// the meter's readings alone, as far as the collateral goes (while closing: at
    /// settlement). Anyone, before the deadline.
    function redeemWithReadings(Deal calldata deal, IClearingPool.SignedReading[] calldata readings) external;

    /// @notice Closes at once on a final amount both agents signed (EIP-712 `CloseChannel`).
    /// As in {open}, an empty signature stands for the caller, who must be that side's agent.
    function closeCooperative(
        Deal calldata deal,
        uint96 finalAmount,
        bytes calldata buyerSignature,
        bytes calldata sellerSignature
    ) external;

    /// @notice Starts a unilateral close; the challenge window runs from now. The seller's
    /// agent or owner at any time (it gives up the rest of the deal); the buyer's once the
    /// deal's delivery has ended. A second call changes nothing.
    function startClose(Deal calldata deal) external;

    /// @notice A party closes with the latest voucher: records it (paid at settlement) and
    /// starts the close, as {startClose}.
    function closeWithVoucher(
        Deal calldata deal,
        SignedVoucher calldata voucher,
        IClearingPool.SignedReading calldata reading
    ) external;

    /// @notice During the window: records a newer voucher, paid when the channel settles.
    /// It does not move the deadline. Anyone may call it.
    function challenge(Deal calldata deal, SignedVoucher calldata voucher, IClearingPool.SignedReading calldata reading)
        external;

    /// @notice After the window: pays the seller what is owed, gives the rest of the
    /// collateral back and records any shortfall as the buyer's debt. Anyone may call it.
    function settle(Deal calldata deal) external;

    /// @notice Asks to take back collateral; possible after a delay longer than the challenge
    /// window, so the seller has time to redeem or close. The buyer's agent or owner.
    function requestWithdrawal(Deal calldata deal, uint96 amount) external;

    /// @notice Carries out the pending withdrawal, as far as collateral is not owed. Anyone.
    function withdrawCollateral(Deal calldata deal) external;

    /// @notice A channel's state. `sellerMeter` is the deal's meter: while a channel closes,
    /// what was funded and paid when the close started is kept in the meter's storage slot
    /// (rewriting a slot the deal's opening wrote costs less than filling a new one), where
    /// the id alone does not find it. While the channel closes, a meter whose slot does not
    /// hold its record reverts with {ChannelCloseRecordNotAtMeter}; in the other states the
    /// meter is not used.
    function channelOf(bytes32 channel, address sellerMeter) external view returns (Channel memory);

    /// @notice The channel id of a deal (its EIP-712 digest, which the agents sign).
    function channelId(Deal calldata deal) external view returns (bytes32);

    /// @notice EIP-712 digest of a voucher.
    function hashVoucher(Voucher calldata voucher) external view returns (bytes32);

    /// @notice EIP-712 digest of a cooperative close.
    function hashClose(bytes32 channel, uint96 finalAmount) external view returns (bytes32);

    /// @notice EIP-712 digest of a meter reading, as the pool computes it.
    function hashReading(IClearingPool.MeterReading calldata reading) external view returns (bytes32);

    /// @notice The last interval a meter is booked for by a deal (0 = never).
    function bookedThrough(address meter) external view returns (uint64);

    /// @notice The EIP-712 domain separator.
    function domainSeparator() external view returns (bytes32);
}
