// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ICellRegistry} from "./interfaces/ICellRegistry.sol";
import {ICellWallets} from "./interfaces/ICellWallets.sol";
import {IClearingPool} from "./interfaces/IClearingPool.sol";
import {IDebtChannels} from "./interfaces/IDebtChannels.sol";
import {CellRoles} from "./libraries/CellRoles.sol";
import {MeterReadings} from "./libraries/MeterReadings.sol";
import {Signatures} from "./libraries/Signatures.sol";
import {CellStatus, CellType} from "./types/CellTypes.sol";

/// @title DebtChannels
/// @notice Debt payment channels for bilateral deals. See {IDebtChannels}.
/// @dev The deal's terms are not stored: every call hands them in again and their digest must
/// be the channel id, which costs less than reading them back from storage. The collateral
/// leaves the buyer's wallet for this contract's market account in the wallets, so that the
/// account always holds exactly the collateral of the open and closing channels.
contract DebtChannels is IDebtChannels, EIP712 {
    bytes32 public constant DEAL_TYPEHASH = keccak256(
        "Deal(uint256 buyerCell,uint256 sellerCell,address sellerMeter,uint96 pricePerKWh,uint64 maxWhPerInterval,uint64 firstInterval,uint64 lastInterval,uint96 collateral,uint64 expiry,uint64 salt)"
    );
    bytes32 public constant VOUCHER_TYPEHASH =
        keccak256("Voucher(bytes32 channel,uint32 seq,uint64 cumulativeWh,uint96 cumulativeAmount)");
    bytes32 public constant CLOSE_TYPEHASH = keccak256("CloseChannel(bytes32 channel,uint96 finalAmount)");
    bytes32 public constant METER_READING_TYPEHASH = MeterReadings.TYPEHASH;

    uint256 private constant MAX_AMOUNT = type(uint80).max;
    uint256 private constant MAX_SEQ = type(uint24).max;

    /// @dev A channel's state in memory. In storage it is one slot, which every voucher reads
    /// and writes and nothing else of the channel's needs:
    /// owed 80 | funded, or the close deadline while closing, 80 | baselineCumWh 64 | seq 24 |
    /// status 7 bits, hasBaseline 1 bit. While the channel is open every operation pays the
    /// seller at once as far as the collateral goes, so what was paid is min(owed, funded) and
    /// need not be stored; the collateral left is funded - paid. While it closes, nothing is
    /// paid until settlement and funding cannot change, so funding and what was paid move to
    /// a close record (in the meter's slot, see {_meters}) and the deadline takes funding's
    /// place. Amounts are below 2^80 (checked at opening and top-up): 1.2e24 base units, a
    /// million tokens of 18 decimals.
    struct Core {
        uint96 owed;
        uint96 funded;
        uint40 closeDeadline;
        uint64 baselineCumWh;
        uint32 seq;
        Status status;
        bool hasBaseline;
    }

    /// @dev A close record in a slot of its own: used only when the meter's slot already
    /// holds the record of another of the meter's channels, closing at the same time. Where
    /// one exists it is the channel's record; where none does, the meter's slot holds it.
    struct CloseRecord {
        uint96 funded;
        uint96 paidAtClose;
        bool exists;
    }

    struct Withdrawal {
        uint96 amount;
        uint40 at;
    }

    ICellRegistry public immutable registry;
    ICellWallets public immutable wallets;
    uint256 public immutable intervalSeconds;
    uint256 public immutable challengeWindow;
    uint256 public immutable withdrawalDelay;

    mapping(bytes32 channel => Core) private _cores;
    mapping(bytes32 channel => CloseRecord) private _closeRecords;
    mapping(bytes32 channel => Withdrawal) private _withdrawals;
    /// @dev A meter's slot: the last interval booked by a deal (bits 0-63) and the close
    /// record of one of the meter's channels while it closes: funded (64-143), paid when the
    /// close started (144-223), the low 31 bits of the channel id (224-254) and a bit saying
    /// the record is in use (255). The slot is written when the meter's first deal opens, so
    /// a close rewrites a slot that holds a value (5,000 gas) instead of filling a new one
    /// (22,100). Deals on a meter may not overlap, but two of them may close at once: the
    /// second then keeps its record in {_closeRecords}.
    mapping(address meter => uint256) private _meters;

    uint256 private constant BOOKED_MASK = type(uint64).max;
    uint256 private constant RECORD_IN_USE = 1 << 255;
    uint256 private constant TAG_MASK = (1 << 31) - 1;

    /// @param intervalSeconds_ The pool's interval length, s.
    /// @param challengeWindow_ How long a unilateral close stays open to newer vouchers, s
    /// (4 h by default; docs/channels.md says why a rollup needs 24 h or more).
    /// @param withdrawalDelay_ How long a collateral withdrawal waits; longer than the window.
    constructor(
        ICellRegistry registry_,
        ICellWallets wallets_,
        uint256 intervalSeconds_,
        uint256 challengeWindow_,
        uint256 withdrawalDelay_
    ) EIP712("gridcell", "1") {
        require(intervalSeconds_ > 0, "bad interval");
        require(challengeWindow_ > 0 && challengeWindow_ < type(uint32).max, "bad window");
        require(withdrawalDelay_ > challengeWindow_ && withdrawalDelay_ < type(uint32).max, "bad delay");
        // The calls to these two skip the code-size check (see {_walletCall}): check it once.
        require(address(registry_).code.length > 0 && address(wallets_).code.length > 0, "no code");
        registry = registry_;
        wallets = wallets_;
        intervalSeconds = intervalSeconds_;
        challengeWindow = challengeWindow_;
        withdrawalDelay = withdrawalDelay_;
    }

    /// @inheritdoc IDebtChannels
    function open(Deal calldata deal, bytes calldata buyerSignature, bytes calldata sellerSignature)
        external
        returns (bytes32 channel)
    {
        channel = _hashTypedDataV4(_hashDeal(deal));
        Core storage ref = _cores[channel];
        uint256 word;
        assembly ("memory-safe") {
            word := sload(ref.slot)
        }
        if (word != 0) revert ChannelExists(channel); // every channel's slot has a status
        if (block.timestamp > deal.expiry) revert ChannelDealExpired(deal.expiry);
        _checkTerms(deal);
        uint256 meterWord = _meters[deal.sellerMeter];
        uint64 booked = uint64(meterWord);
        if (deal.firstInterval <= booked) revert ChannelMeterBooked(deal.sellerMeter, booked);
        _checkCell(deal.buyerCell, channel, buyerSignature, deal.maxWhPerInterval, true);
        _checkCell(deal.sellerCell, channel, sellerSignature, deal.maxWhPerInterval, false);
        if (_registryView(ICellRegistry.cellOfMeter.selector, uint160(deal.sellerMeter)) != deal.sellerCell) {
            revert ChannelMeterNotInCell(deal.sellerMeter, deal.sellerCell);
        }
        // Keeps a close record the slot may hold for an earlier deal on the meter.
        _meters[deal.sellerMeter] = (meterWord & ~BOOKED_MASK) | deal.lastInterval;
        // A new channel's core: funded = the collateral (below 2^80, checked), status Open;
        // the layout of {_storeCore}.
        uint256 collateral = deal.collateral;
        word = (collateral << 80) | (uint256(uint8(Status.Open)) << 248);
        assembly ("memory-safe") {
            sstore(ref.slot, word)
        }
        _walletCall(ICellWallets.commitForAgent.selector, deal.buyerCell, collateral);
        // ChannelOpened(channel, buyerCell, sellerCell, sellerMeter, pricePerKWh,
        // maxWhPerInterval, firstInterval, lastInterval, collateral): its data are the deal's
        // words 2 to 7 as they are in calldata, each already read (so checked clean) above.
        bytes32 topic = ChannelOpened.selector;
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, add(deal, 0x40), 0xc0)
            log4(m, 0xc0, topic, channel, calldataload(deal), calldataload(add(deal, 0x20)))
        }
    }

    /// @inheritdoc IDebtChannels
    function topUp(Deal calldata deal, uint96 amount) external {
        (bytes32 channel, Core memory c) = _load(deal);
        if (c.status != Status.Open) revert ChannelNotOpen(channel, c.status);
        if (!_isParty(deal.buyerCell, msg.sender)) revert ChannelNotParty(channel, msg.sender);
        if (amount == 0) revert ChannelZeroAmount();
        uint96 paidBefore = _covered(c);
        if (uint256(c.funded) + amount > MAX_AMOUNT) revert ChannelAmountTooLarge(uint256(c.funded) + amount);
        c.funded += amount;
        uint96 paidNow = _covered(c) - paidBefore;
        _storeCore(channel, c);
        _walletCall(ICellWallets.commitForAgent.selector, deal.buyerCell, amount);
        if (paidNow > 0) _walletCall(ICellWallets.payFromMarket.selector, deal.sellerCell, paidNow);
        emit CollateralToppedUp(channel, amount, c.funded - _covered(c), paidNow);
    }

    /// @inheritdoc IDebtChannels
    function redeem(Deal calldata deal, SignedVoucher calldata voucher, IClearingPool.SignedReading calldata reading)
        external
    {
        (bytes32 channel, Core memory c) = _load(deal);
        _acceptVoucher(channel, deal, c, voucher, reading);
    }

    /// @inheritdoc IDebtChannels
    function challenge(Deal calldata deal, SignedVoucher calldata voucher, IClearingPool.SignedReading calldata reading)
        external
    {
        (bytes32 channel, Core memory c) = _load(deal);
        if (c.status != Status.Closing) revert ChannelNotClosing(channel, c.status);
        _acceptVoucher(channel, deal, c, voucher, reading);
    }

    /// @inheritdoc IDebtChannels
    function closeWithVoucher(
        Deal calldata deal,
        SignedVoucher calldata voucher,
        IClearingPool.SignedReading calldata reading
    ) external {
        (bytes32 channel, Core memory c) = _load(deal);
        // Closing first, so the voucher is recorded and paid at settlement, in one transfer.
        _startClose(channel, deal, c);
        _acceptVoucher(channel, deal, c, voucher, reading);
    }

    /// @inheritdoc IDebtChannels
    function redeemWithReadings(Deal calldata deal, IClearingPool.SignedReading[] calldata readings) external {
        (bytes32 channel, Core memory c) = _load(deal);
        if (readings.length == 0) revert ChannelNoReadings();
        uint64 end = _acceptingUntil(channel, deal, c);
        // The latest reading (highest interval) proves the most: counters only grow.
        uint64 interval;
        uint64 latestCumWh;
        for (uint256 i = 0; i < readings.length; ++i) {
            (uint64 t, uint64 cum) = _absorb(deal, c, readings[i], i, end);
            if (t >= interval) {
                interval = t;
                latestCumWh = cum;
            }
        }
        (uint256 provenWh, uint256 meteredWh) = _proven(deal, c, interval, latestCumWh);
        // Rounds down, in the buyer's favour (docs/rounding.md). provenWh <= the deal's
        // contracted energy, whose worth opening checked to be below 2^80.
        uint256 amount = (provenWh * deal.pricePerKWh) / 1000;
        uint96 paidNow = _raiseOwed(c, amount);
        _storeCore(channel, c);
        if (paidNow > 0) _walletCall(ICellWallets.payFromMarket.selector, deal.sellerCell, paidNow);
        // meteredWh and provenWh are differences of uint64 counters.
        emit DeliveryProven(channel, interval, uint64(meteredWh), uint64(provenWh), uint96(amount), paidNow);
    }

    /// @inheritdoc IDebtChannels
    function closeCooperative(
        Deal calldata deal,
        uint96 finalAmount,
        bytes calldata buyerSignature,
        bytes calldata sellerSignature
    ) external {
        (bytes32 channel, Core memory c) = _load(deal);
        if (c.status == Status.Closed) revert ChannelNotOpen(channel, c.status);
        bytes32 digest = _hashTypedDataV4(_hashClose(channel, finalAmount));
        _requireAgent(deal.buyerCell, _recover(digest, buyerSignature));
        _requireAgent(deal.sellerCell, _recover(digest, sellerSignature));
        if (finalAmount > MAX_AMOUNT) revert ChannelAmountTooLarge(finalAmount);
        uint96 paid;
        uint64 end;
        bool recordAtMeter;
        if (c.status == Status.Open) {
            paid = _covered(c);
            uint64 current = _currentInterval();
            end = current < deal.lastInterval ? current : deal.lastInterval;
        } else {
            end = _endOf(deal, c.closeDeadline);
            (paid, recordAtMeter) = _resumeClose(channel, deal, c);
        }
        if (finalAmount < paid) revert ChannelFinalBelowPaid(finalAmount, paid);
        c.owed = finalAmount; // both parties signed it: it replaces whatever was proven
        _finish(channel, deal, c, paid, end, recordAtMeter);
    }

    /// @inheritdoc IDebtChannels
    function startClose(Deal calldata deal) external {
        (bytes32 channel, Core memory c) = _load(deal);
        _startClose(channel, deal, c);
    }

    /// @inheritdoc IDebtChannels
    function settle(Deal calldata deal) external {
        (bytes32 channel, Core memory c) = _load(deal);
        if (c.status != Status.Closing) revert ChannelNotClosing(channel, c.status);
        if (block.timestamp < c.closeDeadline) revert ChannelWindowOpen(c.closeDeadline);
        uint64 end = _endOf(deal, c.closeDeadline);
        (uint96 paid, bool recordAtMeter) = _resumeClose(channel, deal, c);
        _finish(channel, deal, c, paid, end, recordAtMeter);
    }

    /// @inheritdoc IDebtChannels
    function requestWithdrawal(Deal calldata deal, uint96 amount) external {
        (bytes32 channel, Core memory c) = _load(deal);
        if (c.status != Status.Open) revert ChannelNotOpen(channel, c.status);
        if (!_isParty(deal.buyerCell, msg.sender)) revert ChannelNotParty(channel, msg.sender);
        if (amount == 0) revert ChannelZeroAmount();
        // block.timestamp + a delay below 2^32 fits 40 bits for the next 30,000 years.
        uint40 at = uint40(block.timestamp + withdrawalDelay);
        _withdrawals[channel] = Withdrawal({amount: amount, at: at});
        emit WithdrawalRequested(channel, amount, at);
    }

    /// @inheritdoc IDebtChannels
    function withdrawCollateral(Deal calldata deal) external {
        (bytes32 channel, Core memory c) = _load(deal);
        if (c.status != Status.Open) revert ChannelNotOpen(channel, c.status);
        Withdrawal memory w = _withdrawals[channel];
        if (w.at == 0) revert ChannelNoWithdrawal(channel);
        if (block.timestamp < w.at) revert ChannelWithdrawalNotDue(w.at);
        // What is owed stays for the seller (already paid, or to be paid when topped up).
        uint96 free = c.funded > c.owed ? c.funded - c.owed : 0;
        uint96 amount = w.amount < free ? w.amount : free;
        c.funded -= amount;
        _storeCore(channel, c);
        delete _withdrawals[channel];
        if (amount > 0) _walletCall(ICellWallets.payFromMarket.selector, deal.buyerCell, amount);
        emit CollateralWithdrawn(channel, amount, c.funded - _covered(c));
    }

    /// @inheritdoc IDebtChannels
    function channelOf(bytes32 channel, address sellerMeter) external view returns (Channel memory ch) {
        Core memory c = _loadCore(channel);
        Withdrawal memory w = _withdrawals[channel];
        ch.status = c.status;
        ch.owed = c.owed;
        ch.seq = c.seq;
        ch.baselineCumWh = c.baselineCumWh;
        ch.withdrawalAmount = w.amount;
        ch.withdrawalAt = w.at;
        if (c.status == Status.Closing) {
            uint96 paidAtClose;
            CloseRecord memory r = _closeRecords[channel];
            if (r.exists) {
                (c.funded, paidAtClose) = (r.funded, r.paidAtClose);
            } else {
                uint256 word = _meters[sellerMeter];
                if (word & RECORD_IN_USE == 0 || (word >> 224) & TAG_MASK != uint256(channel) & TAG_MASK) {
                    revert ChannelCloseRecordNotAtMeter(channel, sellerMeter);
                }
                (c.funded, paidAtClose) = (uint80(word >> 64), uint80(word >> 144));
            }
            ch.paid = paidAtClose;
            ch.collateral = c.funded - paidAtClose;
            ch.closeDeadline = c.closeDeadline;
            // The interval the close started in (the window is a deployment constant).
            ch.endInterval = uint64((c.closeDeadline - challengeWindow) / intervalSeconds);
        } else if (c.status != Status.None) {
            ch.paid = _covered(c);
            if (c.status == Status.Open) ch.collateral = c.funded - ch.paid;
        }
    }

    /// @inheritdoc IDebtChannels
    function channelId(Deal calldata deal) external view returns (bytes32) {
        return _hashTypedDataV4(_hashDeal(deal));
    }

    /// @inheritdoc IDebtChannels
    function hashVoucher(Voucher calldata voucher) external view returns (bytes32) {
        return _hashTypedDataV4(_hashVoucher(voucher));
    }

    /// @inheritdoc IDebtChannels
    function hashClose(bytes32 channel, uint96 finalAmount) external view returns (bytes32) {
        return _hashTypedDataV4(_hashClose(channel, finalAmount));
    }

    /// @inheritdoc IDebtChannels
    function hashReading(IClearingPool.MeterReading calldata reading) external view returns (bytes32) {
        return _hashTypedDataV4(MeterReadings.structHash(reading));
    }

    /// @inheritdoc IDebtChannels
    function bookedThrough(address meter) external view returns (uint64) {
        return uint64(_meters[meter]);
    }

    /// @inheritdoc IDebtChannels
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function _load(Deal calldata deal) private view returns (bytes32 channel, Core memory c) {
        channel = _hashTypedDataV4(_hashDeal(deal));
        c = _loadCore(channel);
        if (c.status == Status.None) revert ChannelUnknown(channel);
    }

    /// @dev Checks the voucher and the readings behind it, raises what is owed and, while the
    /// channel is open, pays the seller the part the collateral newly covers.
    function _acceptVoucher(
        bytes32 channel,
        Deal calldata deal,
        Core memory c,
        SignedVoucher calldata signed,
        IClearingPool.SignedReading calldata reading
    ) private {
        Voucher calldata v = signed.voucher;
        if (v.channel != channel) revert ChannelVoucherForOtherChannel(channel, v.channel);
        if (v.seq <= c.seq) revert ChannelStaleVoucher(channel, v.seq, c.seq);
        if (v.seq > MAX_SEQ) revert ChannelSeqTooLarge(v.seq, uint32(MAX_SEQ));
        _requireAgent(deal.buyerCell, _recoverCompact(_hashTypedDataV4(_hashVoucher(v)), signed.r, signed.vs));
        uint256 provenWh = _provenWh(channel, deal, c, reading);
        if (v.cumulativeWh > provenWh) revert ChannelVoucherOverMetered(v.cumulativeWh, provenWh);
        // Rounds down, in the buyer's favour; < 2^64 * 2^96.
        uint256 worth = (uint256(v.cumulativeWh) * deal.pricePerKWh) / 1000;
        if (v.cumulativeAmount > worth) revert ChannelVoucherOverPrice(v.cumulativeAmount, worth);
        c.seq = v.seq;
        // Amounts owed only grow: a newer voucher for less (a buyer going back on its word)
        // cannot take back what an older one, or the readings, proved.
        uint96 paidNow = _raiseOwed(c, v.cumulativeAmount);
        _storeCore(channel, c);
        if (paidNow > 0) _walletCall(ICellWallets.payFromMarket.selector, deal.sellerCell, paidNow);
        emit VoucherAccepted(channel, v.seq, v.cumulativeWh, v.cumulativeAmount, paidNow);
    }

    function _provenWh(bytes32 channel, Deal calldata deal, Core memory c, IClearingPool.SignedReading calldata reading)
        private
        view
        returns (uint256 provenWh)
    {
        (uint64 t, uint64 cum) = _absorb(deal, c, reading, 0, _acceptingUntil(channel, deal, c));
        (provenWh,) = _proven(deal, c, t, cum);
    }

    /// @dev Vouchers and readings count while the channel is open, and while it is closing
    /// until the deadline. Returns the last interval they may speak of.
    function _acceptingUntil(bytes32 channel, Deal calldata deal, Core memory c) private view returns (uint64) {
        if (c.status == Status.Open) return deal.lastInterval;
        if (c.status != Status.Closing) revert ChannelNotOpen(channel, c.status);
        if (block.timestamp >= c.closeDeadline) revert ChannelWindowClosed(c.closeDeadline);
        return _endOf(deal, c.closeDeadline);
    }

    /// @dev Checks one reading and lowers the deal's baseline to the start-of-interval counter
    /// it shows, if that is lower. The baseline is the counter when the deal began, as far as
    /// readings have shown it: an honest meter's counter only grows, so the lowest
    /// start-of-interval counter of the deal's intervals never falls below the true start and
    /// the seller can only undercount. Hand in the first interval's reading once to count
    /// from the deal's start.
    function _absorb(
        Deal calldata deal,
        Core memory c,
        IClearingPool.SignedReading calldata signed,
        uint256 index,
        uint64 end
    ) private view returns (uint64 t, uint64 cum) {
        uint64 start;
        (t, cum, start) = _checkReading(deal, signed, index, end);
        if (!c.hasBaseline || start < c.baselineCumWh) {
            c.baselineCumWh = start;
            c.hasBaseline = true;
        }
    }

    /// @dev Energy proven by a reading of interval `t` with export counter `cum`:
    /// min(metered, contracted), metered = cum - baseline, contracted = maxWhPerInterval x the
    /// intervals from the first up to `t`.
    function _proven(Deal calldata deal, Core memory c, uint64 t, uint64 cum)
        private
        pure
        returns (uint256 provenWh, uint256 meteredWh)
    {
        // baseline <= a reading's start <= its end counter: _absorb saw every reading.
        meteredWh = cum - c.baselineCumWh;
        uint256 contractedWh = uint256(deal.maxWhPerInterval) * (t - deal.firstInterval + 1);
        provenWh = meteredWh < contractedWh ? meteredWh : contractedWh;
    }

    /// @dev One reading of the deal's meter, for the deal's cell, in the deal's intervals up
    /// to `end`, signed by a meter key the cell still has. Returns its interval, its export
    /// counter at the end and at the start of the interval.
    function _checkReading(Deal calldata deal, IClearingPool.SignedReading calldata signed, uint256 index, uint64 end)
        private
        view
        returns (uint64 t, uint64 cum, uint64 start)
    {
        IClearingPool.MeterReading calldata r = signed.reading;
        if (r.meter != deal.sellerMeter) revert ChannelWrongMeter(r.meter, deal.sellerMeter);
        if (r.cell != deal.sellerCell) revert ChannelMeterNotInCell(r.meter, deal.sellerCell);
        t = r.interval;
        if (t < deal.firstInterval || t > end) revert ChannelReadingOutOfRange(t, deal.firstInterval, end);
        cum = r.exportCumWh;
        uint64 during = r.exportWh;
        if (during > cum) revert ChannelImplausibleReading(index);
        MeterReadings.Check verdict = MeterReadings.check(signed, _domainSeparatorV4(), registry);
        if (verdict == MeterReadings.Check.BadSignature) revert ChannelReadingInvalid(index);
        if (verdict == MeterReadings.Check.MeterNotInCell) revert ChannelMeterNotInCell(r.meter, r.cell);
        start = cum - during; // during <= cum, checked above
    }

    /// @dev Owed only grows. While the channel is open, returns what the collateral newly
    /// covers, which the caller pays the seller at once; while closing, payment waits.
    function _raiseOwed(Core memory c, uint256 amount) private pure returns (uint96 paidNow) {
        if (amount <= c.owed) return 0;
        uint96 before = _covered(c);
        c.owed = uint96(amount); // amount <= the deal's worth < 2^80, checked at opening
        if (c.status == Status.Open) paidNow = _covered(c) - before;
    }

    function _startClose(bytes32 channel, Deal calldata deal, Core memory c) private {
        bool seller = _isParty(deal.sellerCell, msg.sender);
        if (!seller && !_isParty(deal.buyerCell, msg.sender)) revert ChannelNotParty(channel, msg.sender);
        if (c.status == Status.Closing) return; // the window started once and stays as it is
        if (c.status != Status.Open) revert ChannelNotOpen(channel, c.status);
        if (!seller) {
            // The buyer may not walk away from a deal before its delivery is over.
            uint256 deliveryEnd = (uint256(deal.lastInterval) + 1) * intervalSeconds;
            if (block.timestamp < deliveryEnd) revert ChannelTooEarlyToClose(deliveryEnd);
        }
        uint40 deadline = uint40(block.timestamp + challengeWindow); // window < 2^32, checked at deployment
        uint96 paid = _covered(c);
        uint256 word = _meters[deal.sellerMeter];
        if (word & RECORD_IN_USE == 0) {
            // Both amounts are below 2^80; the record bits of a slot not in use are zero.
            _meters[deal.sellerMeter] = word | (uint256(c.funded) << 64) | (uint256(paid) << 144)
                | ((uint256(channel) & TAG_MASK) << 224) | RECORD_IN_USE;
        } else {
            _closeRecords[channel] = CloseRecord({funded: c.funded, paidAtClose: paid, exists: true});
        }
        c.closeDeadline = deadline;
        c.status = Status.Closing;
        _storeCore(channel, c);
        emit ChannelClosing(channel, msg.sender, deadline, _endOf(deal, deadline));
    }

    /// @dev Pays what is owed as far as the collateral goes, gives the rest back, records the
    /// shortfall as the buyer's debt, frees the meter after `end` and takes the close record,
    /// if any, out of storage (`recordAtMeter`: it is in the meter's slot).
    function _finish(bytes32 channel, Deal calldata deal, Core memory c, uint96 paid, uint64 end, bool recordAtMeter)
        private
    {
        uint96 covered = _covered(c);
        uint96 pay;
        uint96 refund;
        uint96 debt;
        // covered >= paid: owed only grew since `paid` was covered, and funding cannot change
        // while closing; a cooperative final amount is checked against `paid`. covered is
        // min(owed, funded), so neither of the other two differences is negative.
        unchecked {
            pay = covered - paid;
            refund = c.funded - covered;
            debt = c.owed - covered;
        }
        // A record in its own slot goes here, one in the meter's slot below.
        if (c.status == Status.Closing && !recordAtMeter) delete _closeRecords[channel];
        c.status = Status.Closed;
        _storeCore(channel, c);
        // Free the meter after `end`, but never below this deal's own start: an earlier deal on
        // the meter (which ends before this one began) may still be open and count its intervals.
        // The meter's slot is read only when there is something to change: a deal closed after
        // its last interval (the usual cooperative close) leaves it as it is.
        uint64 keep = end >= deal.firstInterval ? end : deal.firstInterval - 1;
        if (recordAtMeter || keep < deal.lastInterval) {
            uint256 word = _meters[deal.sellerMeter];
            uint256 next = recordAtMeter ? word & BOOKED_MASK : word;
            if (keep < deal.lastInterval && uint64(word) == deal.lastInterval) next = (next & ~BOOKED_MASK) | keep;
            if (next != word) _meters[deal.sellerMeter] = next;
        }
        _payOut(deal.sellerCell, pay, deal.buyerCell, refund);
        uint256 debtId = debt > 0 ? wallets.recordDebt(deal.buyerCell, deal.sellerCell, debt) : 0;
        emit ChannelClosed(channel, c.owed, covered, refund, debt, debtId);
    }

    /// @dev The last interval the deal covers once a close started: the interval the close
    /// started in, or the deal's last if that came first.
    function _endOf(Deal calldata deal, uint40 closeDeadline) private view returns (uint64) {
        uint64 closedIn = uint64((closeDeadline - challengeWindow) / intervalSeconds);
        return closedIn < deal.lastInterval ? closedIn : deal.lastInterval;
    }

    /// @dev Back from closing to the accounts: funding returns to the core from the close
    /// record; returns what was paid when the close started and whether the record is in the
    /// meter's slot. The channel's own record slot is read first: the meter's slot holds the
    /// record of whichever of its channels started closing first, and a tag of 31 bits could
    /// not tell channels apart against a party that grinds deal salts.
    function _resumeClose(bytes32 channel, Deal calldata deal, Core memory c)
        private
        view
        returns (uint96 paid, bool recordAtMeter)
    {
        CloseRecord memory r = _closeRecords[channel];
        if (r.exists) {
            c.funded = r.funded;
            return (r.paidAtClose, false);
        }
        uint256 word = _meters[deal.sellerMeter];
        c.funded = uint80(word >> 64);
        return (uint80(word >> 144), true);
    }

    /// @dev What the collateral covers of what is owed; while open, exactly what was paid.
    function _covered(Core memory c) private pure returns (uint96) {
        return c.owed < c.funded ? c.owed : c.funded;
    }

    /// @dev The deal's terms make sense and it has not begun. Its words are read straight from
    /// calldata, once, and checked clean in one test (the ABI decoder would check each word at
    /// every access): a word with bits beyond its field's type is refused.
    function _checkTerms(Deal calldata deal) private view {
        uint256 price;
        uint256 maxWh;
        uint256 first;
        uint256 last;
        uint256 collateral;
        uint256 dirty;
        bool sameCell;
        assembly ("memory-safe") {
            sameCell := eq(calldataload(deal), calldataload(add(deal, 0x20)))
            price := calldataload(add(deal, 0x60))
            maxWh := calldataload(add(deal, 0x80))
            first := calldataload(add(deal, 0xa0))
            last := calldataload(add(deal, 0xc0))
            collateral := calldataload(add(deal, 0xe0))
            // sellerMeter: address; pricePerKWh, collateral: uint96; maxWhPerInterval,
            // firstInterval, lastInterval, expiry, salt: uint64.
            dirty := or(
                or(shr(160, calldataload(add(deal, 0x40))), or(shr(96, price), shr(96, collateral))),
                or(
                    or(shr(64, maxWh), or(shr(64, first), shr(64, last))),
                    or(shr(64, calldataload(add(deal, 0x100))), shr(64, calldataload(add(deal, 0x120))))
                )
            )
        }
        if (dirty != 0) revert ChannelBadTerms("a field has bits beyond its type");
        if (sameCell) revert ChannelBadTerms("buyer and seller are the same cell");
        if (price == 0) revert ChannelBadTerms("price is zero");
        if (maxWh == 0) revert ChannelBadTerms("maxWhPerInterval is zero");
        if (last < first) revert ChannelBadTerms("lastInterval before firstInterval");
        if (collateral == 0) revert ChannelBadTerms("collateral is zero");
        // Whatever readings prove is then worth less than 2^80 base units (owed fits its field).
        // No overflow: maxWh < 2^64, last - first + 1 <= 2^64 (both below 2^64, last >= first)
        // and price < 2^96, so the product is below 2^224.
        unchecked {
            if ((maxWh * (last - first + 1) * price) / 1000 > MAX_AMOUNT) {
                revert ChannelBadTerms("deal worth 2^80 or more");
            }
        }
        if (collateral > MAX_AMOUNT) revert ChannelBadTerms("collateral 2^80 or more");
        uint256 current = block.timestamp / intervalSeconds;
        // Both below 2^64: first checked clean, current = now / interval length.
        if (first <= current) revert ChannelStartsTooLate(uint64(first), uint64(current));
    }

    /// @dev The cell's agent signed the deal; the cell is connected, may take this side of
    /// an energy trade (IDEA Table 2) and its connection carries `maxWh` in one interval.
    function _checkCell(uint256 cellId, bytes32 digest, bytes calldata signature, uint64 maxWh, bool buyer)
        private
        view
    {
        (uint256 cellType, uint256 status, address agent, uint256 maxImportW, uint256 maxExportW) = _cellOf(cellId);
        address signer = _recover(digest, signature);
        if (signer != agent) revert ChannelNotAgent(cellId, signer);
        if (status != uint8(CellStatus.Connected)) revert ChannelCellNotConnected(cellId);
        if (buyer ? !CellRoles.canBuyEnergy(CellType(cellType)) : !CellRoles.canSellEnergy(CellType(cellType))) {
            revert ChannelRoleNotAllowed(cellId);
        }
        uint256 limitWh = ((buyer ? maxImportW : maxExportW) * intervalSeconds) / 3600;
        if (maxWh > limitWh) revert ChannelOverLimit(cellId, maxWh, limitWh);
    }

    /// @dev The cell's current agent key signed: a rotated-out agent signs nothing valid.
    function _requireAgent(uint256 cellId, address signer) private view {
        // signer is never zero (_recover refuses that), so an unknown cell's zero agent fails.
        if (signer != _agentOf(cellId)) revert ChannelNotAgent(cellId, signer);
    }

    /// @dev A 65-byte {r, s, v} or 64-byte EIP-2098 {r, vs} signature. Malleable (high-s)
    /// signatures and ones that recover no address are refused. An empty signature stands for
    /// the caller: a party's agent that submits the transaction itself consents by sending it,
    /// and the caller's address then has to be that party's agent key, as a signer's would.
    function _recover(bytes32 digest, bytes calldata signature) private view returns (address signer) {
        if (signature.length == 0) return msg.sender;
        bytes32 r;
        bytes32 s;
        assembly ("memory-safe") {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 0x20))
        }
        // Both forms are at least 64 bytes long: the loads stay within the signature.
        if (signature.length == 64) {
            signer = Signatures.recoverCompact(digest, r, s);
        } else if (signature.length == 65) {
            uint256 v;
            assembly ("memory-safe") {
                v := byte(0, calldataload(add(signature.offset, 0x40)))
            }
            signer = Signatures.recover(digest, r, s, v);
        }
        if (signer == address(0)) revert ChannelBadSignature(signature.length);
    }

    function _recoverCompact(bytes32 digest, bytes32 r, bytes32 vs) private view returns (address signer) {
        signer = Signatures.recoverCompact(digest, r, vs);
        if (signer == address(0)) revert ChannelBadSignature(64);
    }

    function _isParty(uint256 cellId, address who) private view returns (bool) {
        return _agentOf(cellId) == who || IERC721(address(registry)).ownerOf(cellId) == who;
    }

    // Calls to the registry and the wallets, this deployment's own contracts (the constructor
    // checks they have code), without the ABI coder's code-size check, memory allocation and
    // return-data validation: a few hundred gas a call, and opening and closing a deal make
    // four or five. A revert comes back with the callee's reason.

    function _agentOf(uint256 cellId) private view returns (address) {
        // The registry returns an address: the upper 96 bits of the word are zero.
        return address(uint160(_registryView(ICellRegistry.agentOf.selector, cellId)));
    }

    /// @dev A one-word view of the registry with one argument.
    function _registryView(bytes4 selector, uint256 arg) private view returns (uint256 word) {
        address target = address(registry);
        assembly ("memory-safe") {
            mstore(0x00, selector)
            mstore(0x04, arg)
            // staticcall runs before returndatasize is read (Yul evaluates right to left).
            if iszero(and(gt(returndatasize(), 0x1f), staticcall(gas(), target, 0x00, 0x24, 0x00, 0x20))) {
                let m := mload(0x40)
                returndatacopy(m, 0x00, returndatasize())
                revert(m, returndatasize())
            }
            word := mload(0x00)
        }
    }

    /// @dev registry.cellOf: type, status, agent and limits (it reverts for an unknown cell).
    function _cellOf(uint256 cellId)
        private
        view
        returns (uint256 cellType, uint256 status, address agent, uint256 maxImportW, uint256 maxExportW)
    {
        address target = address(registry);
        bytes4 selector = ICellRegistry.cellOf.selector;
        assembly ("memory-safe") {
            let m := mload(0x40) // scratch past the free-memory pointer; not kept
            mstore(m, selector)
            mstore(add(m, 0x04), cellId)
            if iszero(and(gt(returndatasize(), 0x9f), staticcall(gas(), target, m, 0x24, m, 0xa0))) {
                returndatacopy(m, 0x00, returndatasize())
                revert(m, returndatasize())
            }
            // The registry's own encoding of {ICellRegistry.Cell}: each field right-aligned.
            cellType := mload(m)
            status := mload(add(m, 0x20))
            agent := mload(add(m, 0x40))
            maxImportW := mload(add(m, 0x60))
            maxExportW := mload(add(m, 0x80))
        }
    }

    /// @dev Pays the seller and refunds the buyer from the channels' account: one wallet call
    /// when both get something.
    function _payOut(uint256 sellerCell, uint256 pay, uint256 buyerCell, uint256 refund) private {
        if (pay == 0 || refund == 0) {
            if (pay > 0) _walletCall(ICellWallets.payFromMarket.selector, sellerCell, pay);
            if (refund > 0) _walletCall(ICellWallets.payFromMarket.selector, buyerCell, refund);
            return;
        }
        address target = address(wallets);
        bytes4 selector = ICellWallets.payTwoFromMarket.selector;
        assembly ("memory-safe") {
            let m := mload(0x40) // scratch past the free-memory pointer; not kept
            mstore(m, selector)
            mstore(add(m, 0x04), sellerCell)
            mstore(add(m, 0x24), pay)
            mstore(add(m, 0x44), buyerCell)
            mstore(add(m, 0x64), refund)
            if iszero(call(gas(), target, 0, m, 0x84, 0x00, 0x00)) {
                returndatacopy(m, 0x00, returndatasize())
                revert(m, returndatasize())
            }
        }
    }

    /// @dev wallets.<selector>(cellId, amount) for the wallet operations that return nothing.
    function _walletCall(bytes4 selector, uint256 cellId, uint256 amount) private {
        address target = address(wallets);
        assembly ("memory-safe") {
            let m := mload(0x40) // scratch past the free-memory pointer; not kept
            mstore(m, selector)
            mstore(add(m, 0x04), cellId)
            mstore(add(m, 0x24), amount)
            if iszero(call(gas(), target, 0, m, 0x44, 0x00, 0x00)) {
                returndatacopy(m, 0x00, returndatasize())
                revert(m, returndatasize())
            }
        }
    }

    function _currentInterval() private view returns (uint64) {
        return uint64(block.timestamp / intervalSeconds);
    }

    /// @dev One SLOAD. The legacy code generator reads (and writes) a packed struct one field
    /// at a time; every voucher pays for this slot, so it is read and written whole, in the
    /// layout {Core} describes.
    function _loadCore(bytes32 channel) private view returns (Core memory c) {
        Core storage ref = _cores[channel];
        uint256 word;
        assembly ("memory-safe") {
            word := sload(ref.slot)
        }
        c.owed = uint80(word);
        c.status = Status(uint8(word >> 248) & 0x7f);
        if (c.status == Status.Closing) c.closeDeadline = uint40(word >> 80);
        else c.funded = uint80(word >> 80);
        c.baselineCumWh = uint64(word >> 160);
        c.seq = uint24(word >> 224);
        c.hasBaseline = word >> 255 != 0;
    }

    /// @dev The inverse of {_loadCore}. Amounts were checked below 2^80 and seq below 2^24.
    function _storeCore(bytes32 channel, Core memory c) private {
        Core storage ref = _cores[channel];
        uint256 second = c.status == Status.Closing ? c.closeDeadline : c.funded;
        uint256 word = uint256(c.owed) | (second << 80) | (uint256(c.baselineCumWh) << 160) | (uint256(c.seq) << 224)
            | (uint256(uint8(c.status)) << 248) | ((c.hasBaseline ? uint256(1) : 0) << 255);
        assembly ("memory-safe") {
            sstore(ref.slot, word)
        }
    }

    /// @dev EIP-712 struct hash of the deal, from calldata: every field is one 32-byte word.
    /// A field with dirty high bits hashes to a digest nobody signed, so it opens nothing
    /// and names no open channel.
    function _hashDeal(Deal calldata d) private pure returns (bytes32 h) {
        bytes32 typeHash = DEAL_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typeHash)
            calldatacopy(add(m, 0x20), d, 0x140)
            h := keccak256(m, 0x160)
        }
    }

    /// @dev EIP-712 struct hash of a `CloseChannel`, hashed past the free-memory pointer
    /// without moving it.
    function _hashClose(bytes32 channel, uint96 finalAmount) private pure returns (bytes32 h) {
        bytes32 typeHash = CLOSE_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typeHash)
            mstore(add(m, 0x20), channel)
            mstore(add(m, 0x40), finalAmount)
            h := keccak256(m, 0x60)
        }
    }

    function _hashVoucher(Voucher calldata v) private pure returns (bytes32 h) {
        bytes32 typeHash = VOUCHER_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typeHash)
            calldatacopy(add(m, 0x20), v, 0x80)
            h := keccak256(m, 0xa0)
        }
    }
}
