// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClearingPool} from "../../src/interfaces/IClearingPool.sol";
import {IDebtChannels} from "../../src/interfaces/IDebtChannels.sol";
import {ChannelFixture} from "../utils/ChannelFixture.sol";

/// @notice Whole-transaction gas of the channels' operations, written to
/// snapshots/DebtChannels.json (run with `forge test --isolate`). docs/channels.md compares
/// them with Raiden's and Nitro's figures and works out a 96-interval day.
/// Readings and vouchers are steady-state: the deal's baseline was set by an earlier reading.
contract DebtChannelsGasTest is ChannelFixture {
    DealKeys internal _k;

    function _open() internal {
        vm.pauseGasMetering();
        DealKeys memory k = standardDeal();
        _k = k;
        (bytes memory b, bytes memory s) = signDeal(k);
        vm.resumeGasMetering();
        _k.id = channels.open(k.deal, b, s);
    }

    /// First interval delivered and proven, so the baseline is known; time after interval 2.
    function _deliveredTwoIntervals() internal returns (DealKeys memory k) {
        _open();
        vm.pauseGasMetering();
        k = _k;
        uint64 t = k.deal.firstInterval;
        warpToInterval(t + 2);
        channels.redeem(k.deal, fairVoucher(k, 1, 1000), meterReading(k.seller, t, 1000, 51_000));
        vm.resumeGasMetering();
    }

    function test_gas_open() public {
        _open();
        vm.snapshotGasLastCall("DebtChannels", "open");
    }

    function test_gas_redeem() public {
        DealKeys memory k = _deliveredTwoIntervals();
        IDebtChannels.SignedVoucher memory v = fairVoucher(k, 2, 3000);
        IClearingPool.SignedReading memory r = meterReading(k.seller, k.deal.firstInterval + 1, 2000, 53_000);
        channels.redeem(k.deal, v, r);
        vm.snapshotGasLastCall("DebtChannels", "redeem");
    }

    function test_gas_redeemWithReadings() public {
        DealKeys memory k = _deliveredTwoIntervals();
        IClearingPool.SignedReading[] memory r = one(meterReading(k.seller, k.deal.firstInterval + 1, 2000, 53_000));
        channels.redeemWithReadings(k.deal, r);
        vm.snapshotGasLastCall("DebtChannels", "redeemWithReadings");
    }

    function test_gas_closeWithVoucher() public {
        DealKeys memory k = _deliveredTwoIntervals();
        IDebtChannels.SignedVoucher memory v = fairVoucher(k, 2, 3000);
        IClearingPool.SignedReading memory r = meterReading(k.seller, k.deal.firstInterval + 1, 2000, 53_000);
        vm.prank(k.seller.agent);
        channels.closeWithVoucher(k.deal, v, r);
        vm.snapshotGasLastCall("DebtChannels", "closeWithVoucher");
    }

    function test_gas_challenge() public {
        DealKeys memory k = _deliveredTwoIntervals();
        vm.pauseGasMetering();
        vm.prank(k.seller.agent);
        channels.startClose(k.deal);
        IDebtChannels.SignedVoucher memory v = fairVoucher(k, 2, 3000);
        IClearingPool.SignedReading memory r = meterReading(k.seller, k.deal.firstInterval + 1, 2000, 53_000);
        vm.resumeGasMetering();
        channels.challenge(k.deal, v, r);
        vm.snapshotGasLastCall("DebtChannels", "challenge");
    }

    function test_gas_settle() public {
        DealKeys memory k = _deliveredTwoIntervals();
        vm.pauseGasMetering();
        IDebtChannels.SignedVoucher memory v = fairVoucher(k, 2, 3000);
        IClearingPool.SignedReading memory r = meterReading(k.seller, k.deal.firstInterval + 1, 2000, 53_000);
        vm.prank(k.seller.agent);
        channels.closeWithVoucher(k.deal, v, r);
        vm.warp(block.timestamp + CHALLENGE_WINDOW);
        vm.resumeGasMetering();
        channels.settle(k.deal);
        vm.snapshotGasLastCall("DebtChannels", "settle");
    }

    function test_gas_closeCooperative() public {
        DealKeys memory k = _deliveredTwoIntervals();
        vm.pauseGasMetering();
        bytes32 digest = channels.hashClose(k.id, 600_000);
        bytes memory b = signDigest(k.buyer.agentKey, digest);
        bytes memory s = signDigest(k.seller.agentKey, digest);
        vm.resumeGasMetering();
        channels.closeCooperative(k.deal, 600_000, b, s);
        vm.snapshotGasLastCall("DebtChannels", "closeCooperative");
    }

    /// The per-interval alternative: one ERC-20 transfer from the buyer to the seller, to an
    /// address that already holds the token.
    function test_gas_erc20TransferPerInterval() public {
        address buyer = address(0xB0B);
        address seller = address(0x5E11);
        token.faucet(buyer, 1_000e6);
        token.faucet(seller, 1);
        vm.prank(buyer);
        token.transfer(seller, 200_000);
        vm.snapshotGasLastCall("DebtChannels", "erc20Transfer");
    }

    /// A day's deal on a meter that served yesterday's deal too (its booking slot is warm):
    /// open, then one cooperative close that pays the seller and refunds the rest. The seller's
    /// agent sends both transactions, so its own consent is the transaction and only the
    /// buyer's signature travels (an empty signature stands for the caller), in the 64-byte
    /// EIP-2098 form the TypeScript client sends (chain/typed-data `toChannelSignature`).
    function test_gas_dayDeal() public {
        vm.pauseGasMetering();
        DealKeys memory k = standardDeal();
        k.deal.lastInterval = k.deal.firstInterval + 95;
        k.deal.collateral = uint96((uint256(MAX_WH) * 96 * PRICE) / 1000);
        openDeal(k);
        bytes32 digest = channels.hashClose(k.id, 0);
        channels.closeCooperative(
            k.deal, 0, signDigest(k.buyer.agentKey, digest), signDigest(k.seller.agentKey, digest)
        );
        k.deal.firstInterval = uint64(block.timestamp / INTERVAL + 1);
        k.deal.lastInterval = k.deal.firstInterval + 95;
        k.deal.salt = 2;
        bytes memory b = signCompact(k.buyer.agentKey, channels.channelId(k.deal));
        vm.prank(k.seller.agent);
        vm.resumeGasMetering();
        k.id = channels.open(k.deal, b, "");
        uint256 openGas = vm.snapshotGasLastCall("DebtChannels", "dayDeal_open");
        vm.pauseGasMetering();
        warpToInterval(k.deal.lastInterval + 1);
        uint96 finalAmount = 2_000_000;
        b = signCompact(k.buyer.agentKey, channels.hashClose(k.id, finalAmount));
        vm.prank(k.seller.agent);
        vm.resumeGasMetering();
        channels.closeCooperative(k.deal, finalAmount, b, "");
        uint256 closeGas = vm.snapshotGasLastCall("DebtChannels", "dayDeal_closeCooperative");
        vm.snapshotValue("DebtChannels", "dayDeal_total", openGas + closeGas);
    }

    function signCompact(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (bytes32 r, bytes32 vs) = vm.signCompact(key, digest);
        return abi.encodePacked(r, vs);
    }
}
