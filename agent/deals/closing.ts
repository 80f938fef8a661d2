/**
 * The end of a deal's channel (docs/agent.md, "Closing the channel"). Once the deal's delivery
 * is over and its last voucher is redeemed (or the buyer had `finalVoucherWaitSeconds` to send
 * it), the seller's agent proposes the final amount, its latest voucher's `cumulativeAmount`
 * (or what the chain proved, if more), with its EIP-712 `CloseChannel` signature
 * (`close-propose`). The buyer's agent checks the sender, the signature and that the amount is
 * no more than it signed or the chain proved, and answers with its own signature
 * (`close-accept`) or a reason (`close-refuse`). The seller then calls `closeCooperative`: the
 * seller is paid what is owed and the buyer gets its unused collateral back, at once.
 *
 * No answer by the proposal's deadline (or a refusal): the seller falls back to the unilateral
 * path, `closeWithVoucher` with its latest voucher when the chain has not seen it, `startClose`
 * otherwise, and `settle`s once the challenge window is over. All times are the injected
 * clock's. A buyer holding both signatures submits `closeCooperative` itself when the seller
 * has not done so within `closeAnswerSeconds`. A buyer whose seller has not closed the channel
 * `buyerCloseWaitSeconds` after delivery closes it alone, with its own latest voucher (it
 * pays what it signed for, no more), and settles once the window is over.
 */
import {
  type Address,
  type Chain,
  type Hex,
  type LocalAccount,
  type PublicClient,
  parseEventLogs,
  type Transport,
} from 'viem';
import { debtChannelsAbi } from '../../chain/abi/contracts.generated.js';
import { ContractRevertError, firstLine } from '../../chain/errors/index.js';
import type { Logger } from '../../chain/logger/index.js';
import {
  type CompactSignature,
  type GridcellDomain,
  recoverCloseChannelSigner,
  signCloseChannel,
  toChannelSignature,
  toSignedReadingArg,
  toSignedVoucherArg,
} from '../../chain/typed-data/index.js';
import type { Envelope } from '../messages/index.js';
import type { AgentDirectory, AgentNet } from '../net/index.js';
import type { TxSender } from '../sender/index.js';
import { handInFirstReading } from './firstReading.js';
import type { OpenDeal } from './index.js';

/** Where a channel's close stands, as this agent sees it. */
export type CloseState =
  /** Seller: proposed, waiting for the buyer's signature until `deadline`. */
  | 'proposed'
  /** Buyer: signed the seller's final amount; waits for the channel to close. */
  | 'agreed'
  /** Unilateral close started; settles at `closeDeadline`. */
  | 'closing'
  | 'closed';

export interface ChannelClose {
  state: CloseState;
  /** The final amount proposed or agreed (base units). */
  finalAmount: bigint;
  /** The voucher the amount comes from (0: none). */
  seq: number;
  /** Seller: the buyer's answer is due by then; buyer: when it signed (Unix s). */
  deadline: number;
  sellerSignature?: CompactSignature;
  buyerSignature?: CompactSignature;
  /** Unilateral: the end of the challenge window (Unix s). */
  closeDeadline?: number;
  path?: 'cooperative' | 'unilateral';
  /** The transaction that closed the channel (cooperative close or settle), when this agent sent it. */
  transaction?: Hex;
  /** From `ChannelClosed`, when this agent closed it. */
  outcome?: { owed: bigint; paid: bigint; refunded: bigint; debt: bigint };
  /** Seller: why the buyer refused (the seller then closes alone at once). */
  reason?: string;
  /** The last step that failed (it is tried again a few rounds later). */
  lastError?: string;
}

export interface CloseMetrics {
  closesProposed: number;
  closesAgreed: number;
  closeRefusals: number;
  closedCooperatively: number;
  closedUnilaterally: number;
  closeFailures: number;
}

export interface ChannelCloser {
  /** Moves every deal's close one step (called each agent round). */
  tick(): Promise<void>;
  metrics(): CloseMetrics;
  stop(): void;
}

export interface CreateChannelCloserParameters {
  cell: bigint;
  account: LocalAccount;
  net: AgentNet;
  directory: AgentDirectory;
  publicClient: PublicClient<Transport, Chain>;
  channels: Address;
  channelsDomain: GridcellDomain;
  tx: TxSender;
  now: () => number;
  intervalSeconds: bigint;
  /** How long the seller waits for the buyer's signature before it closes alone. */
  closeAnswerSeconds: number;
  /** How long after delivery the seller waits for the last voucher before it closes anyway. */
  finalVoucherWaitSeconds: number;
  /** How long after delivery the buyer waits for the seller to close before it closes alone. */
  buyerCloseWaitSeconds: number;
  deals: () => Iterable<OpenDeal>;
  deal: (channel: Hex) => OpenDeal | undefined;
  /** Called once a deal's channel is closed on chain (the buyer stops following the meter). */
  onClosed: (entry: OpenDeal) => void;
  logger: Logger;
}

/** Proposals are sent again every this many rounds until answered: gossipsub may drop one. */
const RESEND_EVERY_TICKS = 10;
/** After a failed transaction, the next attempt waits this many rounds. */
const RETRY_AFTER_TICKS = 10;

const Status = { Open: 1, Closing: 2, Closed: 3 } as const;
const senderCell = (envelope: Envelope) => ('cell' in envelope.from ? envelope.from.cell : undefined);

/** Creates the closing side of the deal book and registers its message handlers. */
export function createChannelCloser(parameters: CreateChannelCloserParameters): ChannelCloser {
  const { cell, account, net, directory, publicClient, tx, now, logger } = parameters;
  const channels = { address: parameters.channels, abi: debtChannelsAbi } as const;
  const metrics: CloseMetrics = {
    closesProposed: 0,
    closesAgreed: 0,
    closeRefusals: 0,
    closedCooperatively: 0,
    closedUnilaterally: 0,
    closeFailures: 0,
  };
  /** One step at a time per channel: handlers and rounds meet here. */
  const queues = new Map<Hex, Promise<void>>();
  const resendAt = new Map<Hex, number>();
  const retryAt = new Map<Hex, number>();
  let round = 0;

  function serial(entry: OpenDeal, step: () => Promise<void>): Promise<void> {
    const previous = queues.get(entry.channel) ?? Promise.resolve();
    const next = previous.then(step).catch((error) => {
      metrics.closeFailures++;
      retryAt.set(entry.channel, round + RETRY_AFTER_TICKS);
      if (entry.close) entry.close.lastError = firstLine(error);
      logger.error('closing step failed', { channel: entry.channel, error });
    });
    queues.set(entry.channel, next);
    return next;
  }

  const deliveryEnd = (entry: OpenDeal) =>
    Number((entry.deal.lastInterval + 1n) * parameters.intervalSeconds);
  const channelOf = (entry: OpenDeal) =>
    publicClient.readContract({
      ...channels,
      functionName: 'channelOf',
      args: [entry.channel, entry.deal.sellerMeter],
    });

  function closed(
    entry: OpenDeal,
    close: ChannelClose,
    how: 'cooperative' | 'unilateral' | 'by the other party',
  ) {
    close.state = 'closed';
    if (how === 'cooperative') metrics.closedCooperatively++;
    if (how === 'unilateral') metrics.closedUnilaterally++;
    logger.info('channel closed', {
      channel: entry.channel,
      role: entry.role,
      how,
      finalAmount: close.finalAmount,
      ...(close.outcome ?? {}),
      ...(close.transaction ? { transaction: close.transaction } : {}),
    });
    parameters.onClosed(entry);
  }

  function recordOutcome(
    close: ChannelClose,
    receipt: { logs: Parameters<typeof parseEventLogs>[0]['logs']; transactionHash: Hex },
  ) {
    close.transaction = receipt.transactionHash;
    const [event] = parseEventLogs({ abi: debtChannelsAbi, eventName: 'ChannelClosed', logs: receipt.logs });
    if (event) {
      const { owed, paid, refunded, debt } = event.args;
      close.outcome = { owed, paid, refunded, debt };
    }
  }

  // ---- seller ----

  /** The seller proposes the final amount once delivery is over and the last voucher is in. */
  async function propose(entry: OpenDeal) {
    const t = now();
    const end = deliveryEnd(entry);
    if (t < end || entry.redeeming) return;
    const { voucher, latestReading, deal } = entry;
    const finalVoucherIn =
      voucher !== undefined &&
      latestReading !== undefined &&
      latestReading.reading.interval >= deal.lastInterval &&
      entry.paid >= voucher.message.cumulativeAmount;
    if (!finalVoucherIn && t < end + parameters.finalVoucherWaitSeconds) return;
    const state = await channelOf(entry);
    const seq = voucher?.message.seq ?? 0;
    const voucherAmount = voucher?.message.cumulativeAmount ?? 0n;
    // What the chain proved (readings, earlier vouchers) is owed whatever the buyer says.
    const finalAmount = voucherAmount > state.owed ? voucherAmount : state.owed;
    if (state.status === Status.Closed) {
      entry.close = { state: 'closed', finalAmount: state.owed, seq, deadline: t };
      return closed(entry, entry.close, 'by the other party');
    }
    if (state.status === Status.Closing) {
      // The buyer started a close: make the latest voucher count, then settle after the window.
      entry.close = {
        state: 'closing',
        finalAmount,
        seq,
        deadline: t,
        closeDeadline: state.closeDeadline,
        path: 'unilateral',
      };
      if (voucher && latestReading && voucher.message.seq > state.seq)
        await recordVoucher(entry, 'challenge');
      return;
    }
    const { signature } = await signCloseChannel(account, parameters.channelsDomain, {
      channel: entry.channel,
      finalAmount,
    });
    entry.close = {
      state: 'proposed',
      finalAmount,
      seq,
      deadline: t + parameters.closeAnswerSeconds,
      sellerSignature: signature,
    };
    metrics.closesProposed++;
    logger.info('proposing to close', {
      channel: entry.channel,
      finalAmount,
      seq,
      finalVoucher: finalVoucherIn,
      deadline: entry.close.deadline,
    });
    await sendProposal(entry, entry.close);
  }

  async function sendProposal(entry: OpenDeal, close: ChannelClose) {
    if (!close.sellerSignature) return;
    resendAt.set(entry.channel, round + RESEND_EVERY_TICKS);
    await net.publish({
      type: 'close-propose',
      to: entry.deal.buyerCell,
      channel: entry.channel,
      finalAmount: close.finalAmount,
      seq: close.seq,
      signature: close.sellerSignature,
      deadline: close.deadline,
    });
  }

  /** Both signatures in hand: close at once (also allowed while a unilateral close runs). */
  async function closeCooperatively(entry: OpenDeal, close: ChannelClose) {
    if (!close.buyerSignature || !close.sellerSignature) return;
    const state = await channelOf(entry);
    if (state.status === Status.Closed) return closed(entry, close, 'by the other party');
    // The contract takes an empty signature for the side that sends: sending is its consent,
    // and one signature recovery less (IDebtChannels.open).
    const receipt = await tx.send({
      ...channels,
      functionName: 'closeCooperative',
      args: [
        entry.deal,
        close.finalAmount,
        entry.role === 'buyer' ? '0x' : toChannelSignature(close.buyerSignature),
        entry.role === 'seller' ? '0x' : toChannelSignature(close.sellerSignature),
      ],
    });
    close.path = 'cooperative';
    recordOutcome(close, receipt);
    closed(entry, close, 'cooperative');
  }

  /** Puts the seller's latest voucher on chain: as the close's opening, or as a challenge. */
  async function recordVoucher(entry: OpenDeal, how: 'closeWithVoucher' | 'challenge') {
    const { voucher, latestReading } = entry;
    if (!voucher || !latestReading) return;
    const state = await channelOf(entry);
    if (voucher.message.seq <= state.seq) return;
    if (how === 'closeWithVoucher')
      await handInFirstReading({
        entry,
        baselineCumWh: state.baselineCumWh,
        channels: parameters.channels,
        tx,
      });
    await tx.send({
      ...channels,
      functionName: how,
      args: [
        entry.deal,
        toSignedVoucherArg(voucher),
        toSignedReadingArg({ message: latestReading.reading, signature: latestReading.signature }),
      ],
    });
  }

  /** No signature from the buyer in time: the seller closes alone. */
  async function closeAlone(entry: OpenDeal, close: ChannelClose) {
    const state = await channelOf(entry);
    if (state.status === Status.Closed) return closed(entry, close, 'by the other party');
    const { voucher } = entry;
    const unrecorded = voucher !== undefined && voucher.message.seq > state.seq;
    if (state.status === Status.Open) {
      if (unrecorded) await recordVoucher(entry, 'closeWithVoucher');
      else await tx.send({ ...channels, functionName: 'startClose', args: [entry.deal] });
    } else if (unrecorded) {
      await recordVoucher(entry, 'challenge');
    }
    const after = await channelOf(entry);
    if (voucher) close.seq = voucher.message.seq;
    close.state = 'closing';
    close.path = 'unilateral';
    close.closeDeadline = after.closeDeadline;
    logger.warn('closing the channel alone', {
      channel: entry.channel,
      reason: close.reason ?? `no answer from the buyer, cell ${entry.deal.buyerCell}, by ${close.deadline}`,
      with: unrecorded ? `voucher ${voucher?.message.seq}` : 'startClose',
      settlesAt: after.closeDeadline,
    });
  }

  async function settle(entry: OpenDeal, close: ChannelClose) {
    const state = await channelOf(entry);
    if (state.status === Status.Closed) return closed(entry, close, 'by the other party');
    const receipt = await tx.send({ ...channels, functionName: 'settle', args: [entry.deal] });
    recordOutcome(close, receipt);
    closed(entry, close, 'unilateral');
  }

  async function sellerStep(entry: OpenDeal) {
    const close = entry.close;
    if (!close) return propose(entry);
    const t = now();
    if (close.state === 'proposed') {
      if (close.buyerSignature) return closeCooperatively(entry, close);
      if (t > close.deadline || close.reason) return closeAlone(entry, close);
      if (round >= (resendAt.get(entry.channel) ?? 0)) await sendProposal(entry, close);
    } else if (close.state === 'closing') {
      // A late signature still closes at once and saves waiting out the window.
      if (close.buyerSignature) return closeCooperatively(entry, close);
      if (close.closeDeadline !== undefined && t >= close.closeDeadline) return settle(entry, close);
      // A voucher that came in after the close started still counts until the deadline.
      const { voucher } = entry;
      if (voucher && voucher.message.seq > close.seq) {
        await recordVoucher(entry, 'challenge');
        close.seq = voucher.message.seq;
      }
    }
  }

  net.on('close-accept', async (body, envelope) => {
    if (body.to !== cell) return;
    const entry = parameters.deal(body.channel);
    const close = entry?.close;
    const refuse = (reason: string) =>
      logger.warn('close-accept refused', {
        channel: body.channel,
        from: JSON.stringify(envelope.from),
        reason,
      });
    if (entry?.role !== 'seller' || !close) return refuse('no close of this cell as seller has this channel');
    if (senderCell(envelope) !== entry.deal.buyerCell)
      return refuse(
        `sent by ${JSON.stringify(envelope.from)}, expected the buyer cell ${entry.deal.buyerCell}`,
      );
    if (body.finalAmount !== close.finalAmount)
      return refuse(`final amount ${body.finalAmount}, expected the proposed ${close.finalAmount}`);
    const [signer, agent] = await Promise.all([
      recoverCloseChannelSigner(
        parameters.channelsDomain,
        { channel: entry.channel, finalAmount: body.finalAmount },
        body.signature,
      ),
      directory.agentOf(entry.deal.buyerCell),
    ]);
    if (signer !== agent)
      return refuse(`CloseChannel signed by ${signer}, expected the buyer's agent ${agent}`);
    if (close.buyerSignature || close.state === 'closed') return;
    close.buyerSignature = body.signature;
    await serial(entry, () => sellerStep(entry));
  });

  net.on('close-refuse', (body, envelope) => {
    if (body.to !== cell) return;
    const entry = parameters.deal(body.channel);
    const close = entry?.close;
    if (entry?.role !== 'seller' || close?.state !== 'proposed') return;
    if (senderCell(envelope) !== entry.deal.buyerCell) return;
    metrics.closeRefusals++;
    // The next round takes the unilateral path at once.
    close.reason = `the buyer refused: ${body.reason}`;
    logger.warn('the buyer refused to close', { channel: entry.channel, reason: body.reason });
  });

  // ---- buyer ----

  net.on('close-propose', async (body, envelope) => {
    if (body.to !== cell) return;
    const entry = parameters.deal(body.channel);
    const from = senderCell(envelope);
    if (entry?.role !== 'buyer') {
      logger.warn('close-propose for an unknown channel', { channel: body.channel, from });
      return;
    }
    if (from !== entry.deal.sellerCell) {
      logger.warn('close-propose refused', {
        channel: body.channel,
        reason: `sent by ${JSON.stringify(envelope.from)}, expected the seller cell ${entry.deal.sellerCell}`,
      });
      return;
    }
    const refuse = async (reason: string) => {
      metrics.closeRefusals++;
      logger.warn('close-propose refused', { channel: entry.channel, reason });
      await net.publish({ type: 'close-refuse', to: from, channel: entry.channel, reason });
    };
    const [signer, agent] = await Promise.all([
      recoverCloseChannelSigner(
        parameters.channelsDomain,
        { channel: entry.channel, finalAmount: body.finalAmount },
        body.signature,
      ),
      directory.agentOf(entry.deal.sellerCell),
    ]);
    if (signer !== agent)
      return refuse(`CloseChannel signed by ${signer}, expected the seller's agent ${agent}`);
    const close = entry.close;
    if (close && close.finalAmount === body.finalAmount && close.buyerSignature) {
      // A resent proposal: our answer may have been lost.
      if (close.state !== 'closed')
        await net.publish({
          type: 'close-accept',
          to: from,
          channel: entry.channel,
          finalAmount: close.finalAmount,
          signature: close.buyerSignature,
        });
      return;
    }
    // While its own unilateral close runs, the buyer may still agree: a cooperative close ends
    // the channel at once instead of after the window.
    if (close && close.state !== 'closing')
      return refuse(`already agreed to close at ${close.finalAmount}, received ${body.finalAmount}`);
    const end = deliveryEnd(entry);
    if (now() < end) return refuse(`the deal's delivery runs until ${end} (Unix s)`);
    // The buyer signs no more than it owes by its own latest voucher or by what the chain proved.
    const signed = entry.voucher?.message.cumulativeAmount ?? 0n;
    const state = await channelOf(entry);
    const owed = signed > state.owed ? signed : state.owed;
    if (body.finalAmount > owed)
      return refuse(
        `final amount ${body.finalAmount} is above what is owed: ${signed} by voucher ${entry.voucher?.message.seq ?? 0}, ${state.owed} proven on chain`,
      );
    const { signature } = await signCloseChannel(account, parameters.channelsDomain, {
      channel: entry.channel,
      finalAmount: body.finalAmount,
    });
    entry.close = {
      state: 'agreed',
      finalAmount: body.finalAmount,
      seq: body.seq,
      deadline: now(),
      sellerSignature: body.signature,
      buyerSignature: signature,
    };
    metrics.closesAgreed++;
    logger.info('agreed to close', { channel: entry.channel, finalAmount: body.finalAmount, seq: body.seq });
    await net.publish({
      type: 'close-accept',
      to: from,
      channel: entry.channel,
      finalAmount: body.finalAmount,
      signature,
    });
  });

  /**
   * The buyer watches the channel it agreed to close and closes it itself if the seller does
   * not; with no agreement, it closes alone once its wait after delivery is over, and settles
   * after the window.
   */
  async function buyerStep(entry: OpenDeal) {
    const close = entry.close;
    if (!close) return buyerCloseAlone(entry);
    if (close.state === 'closing') {
      if (close.closeDeadline !== undefined && now() >= close.closeDeadline) await settle(entry, close);
      return;
    }
    if (close.state !== 'agreed') return;
    const state = await channelOf(entry);
    if (state.status === Status.Closed) return closed(entry, close, 'by the other party');
    if (now() >= close.deadline + parameters.closeAnswerSeconds) await closeCooperatively(entry, close);
  }

  /**
   * No close from the seller `buyerCloseWaitSeconds` after delivery: the buyer starts the close
   * with its own latest voucher when the chain has not seen it (the seller is paid what the
   * buyer signed for), else with `startClose`; a close the seller started is followed.
   */
  async function buyerCloseAlone(entry: OpenDeal) {
    const t = now();
    const waitedUntil = deliveryEnd(entry) + parameters.buyerCloseWaitSeconds;
    if (t < waitedUntil) return;
    const state = await channelOf(entry);
    const seq = entry.voucher?.message.seq ?? 0;
    if (state.status === Status.Closed) {
      entry.close = { state: 'closed', finalAmount: state.owed, seq, deadline: t };
      return closed(entry, entry.close, 'by the other party');
    }
    let how = "followed the seller's close";
    if (state.status === Status.Open) {
      if (entry.voucher && entry.voucher.message.seq > state.seq) {
        try {
          await recordVoucher(entry, 'closeWithVoucher');
          how = `closeWithVoucher, voucher ${seq}`;
        } catch (error) {
          // Only a refusal by the chain (its readings do not prove the voucher there) closes
          // without it; a network failure is tried again a few rounds later, voucher and all.
          if (!(error instanceof ContractRevertError)) throw error;
          logger.warn('closing with the own voucher was refused; closing without it', {
            channel: entry.channel,
            error: firstLine(error),
          });
        }
      }
      if ((await channelOf(entry)).status === Status.Open) {
        await tx.send({ ...channels, functionName: 'startClose', args: [entry.deal] });
        how = 'startClose';
      }
    }
    const after = await channelOf(entry);
    entry.close = {
      state: 'closing',
      finalAmount: after.owed,
      seq: after.seq, // the voucher the chain holds
      deadline: t,
      closeDeadline: after.closeDeadline,
      path: 'unilateral',
      reason:
        state.status === Status.Open
          ? `no close from the seller, cell ${entry.deal.sellerCell}, by ${waitedUntil}`
          : `the seller started a close and had not settled it by ${waitedUntil}`,
    };
    logger.warn('closing the channel alone', {
      channel: entry.channel,
      role: 'buyer',
      reason: entry.close.reason,
      how,
      owed: after.owed,
      settlesAt: after.closeDeadline,
    });
  }

  return {
    async tick() {
      round++;
      const steps: Promise<void>[] = [];
      for (const entry of parameters.deals()) {
        if (entry.close?.state === 'closed') continue;
        if (round < (retryAt.get(entry.channel) ?? 0)) continue;
        steps.push(serial(entry, () => (entry.role === 'seller' ? sellerStep(entry) : buyerStep(entry))));
      }
      await Promise.all(steps);
    },
    metrics: () => ({ ...metrics }),
    stop() {
      queues.clear();
    },
  };
}
