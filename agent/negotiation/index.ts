/**
 * Bilateral deals by FIPA Contract Net (FIPA SC00029H): the buyer's agent (initiator) sends a
 * `cfp` for energy per interval over a range of intervals; sellers' agents answer `propose`
 * (holding the capacity in the dispatch ledger) or `refuse`; at the deadline the initiator
 * accepts the cheapest proposal with the complete deal and its signature (`accept-proposal`)
 * and rejects the rest (`reject-proposal`); the chosen seller checks the terms, co-signs, opens
 * the debt channel on chain and answers `inform` with the channel id (or `failure`).
 * Conversations have ids and deadlines; what a deadline leaves open is released.
 */
import { randomBytes } from 'node:crypto';
import type { Address, Chain, Hex, LocalAccount, PublicClient, Transport } from 'viem';
import { debtChannelsAbi } from '../../chain/abi/contracts.generated.js';
import { firstLine } from '../../chain/errors/index.js';
import type { Logger } from '../../chain/logger/index.js';
import {
  channelId,
  type Deal,
  type GridcellDomain,
  recoverDealSigner,
  signDeal,
  toChannelSignature,
} from '../../chain/typed-data/index.js';
import { escrowFor } from '../../chain/units/index.js';
import type { AgentConfig } from '../config/index.js';
import type { DispatchLedger } from '../dispatch/index.js';
import type { BodyOf, Envelope } from '../messages/index.js';
import type { AgentDirectory, AgentNet } from '../net/index.js';
import type { TxSender } from '../sender/index.js';

export type ConversationState = 'collecting' | 'accepted' | 'open' | 'failed';

export interface Conversation {
  id: string;
  role: 'initiator' | 'participant';
  state: ConversationState;
  whPerInterval: bigint;
  firstInterval: bigint;
  lastInterval: bigint;
  deadline: number;
  /** Initiator: proposals received, by seller cell. */
  proposals: Map<bigint, BodyOf<'propose'>>;
  deal?: Deal;
  channel?: Hex;
  reason?: string;
}

export interface NegotiationMetrics {
  cfpsSent: number;
  cfpsReceived: number;
  proposalsSent: number;
  refusalsSent: number;
  accepted: number;
  rejected: number;
  dealsOpened: number;
  failures: number;
}

export interface ContractNet {
  /** Calls for proposals (the buyer's side). */
  callForProposals(request: {
    whPerInterval: bigint;
    firstInterval: bigint;
    lastInterval: bigint;
  }): Promise<string>;
  /** Closes what deadlines have ended. */
  tick(): Promise<void>;
  conversations(): Conversation[];
  metrics(): NegotiationMetrics;
}

export interface CreateContractNetParameters {
  cell: bigint;
  meter: Address;
  config: AgentConfig;
  account: LocalAccount;
  net: AgentNet;
  directory: AgentDirectory;
  ledger: DispatchLedger;
  publicClient: PublicClient<Transport, Chain>;
  channels: Address;
  channelsDomain: GridcellDomain;
  tx: TxSender;
  now: () => number;
  logger: Logger;
  /** Called once a deal's channel is open on chain, on both sides. */
  onDealOpened(deal: Deal, channel: Hex, role: 'buyer' | 'seller'): void;
}

const senderCell = (envelope: Envelope) => ('cell' in envelope.from ? envelope.from.cell : undefined);
const intervalsOf = (first: bigint, last: bigint) => {
  const out: bigint[] = [];
  for (let t = first; t <= last; t++) out.push(t);
  return out;
};

/** Creates both roles of the contract net for one cell and registers its message handlers. */
export function createContractNet(parameters: CreateContractNetParameters): ContractNet {
  const { cell, meter, config, account, net, directory, ledger, publicClient, tx, now, logger } = parameters;
  const conversations = new Map<string, Conversation>();
  const metrics: NegotiationMetrics = {
    cfpsSent: 0,
    cfpsReceived: 0,
    proposalsSent: 0,
    refusalsSent: 0,
    accepted: 0,
    rejected: 0,
    dealsOpened: 0,
    failures: 0,
  };
  const dealPrice = config.preferences.dealPrice ?? config.preferences.minSellPrice;

  function fail(conversation: Conversation, reason: string) {
    conversation.state = 'failed';
    conversation.reason = reason;
    ledger.release(`deal:${conversation.id}`);
    metrics.failures++;
    logger.warn('deal failed', { conversation: conversation.id, role: conversation.role, reason });
  }

  // Participant (seller): answer calls for proposals.
  net.on('cfp', async (cfp, envelope) => {
    const buyer = senderCell(envelope);
    if (buyer === undefined || buyer === cell) return;
    metrics.cfpsReceived++;
    const refuse = async (reason: string) => {
      metrics.refusalsSent++;
      logger.info('cfp refused', { conversation: cfp.conversation, buyer, reason });
      await net.publish({ type: 'refuse', conversation: cfp.conversation, to: buyer, reason });
    };
    if (!config.deals.sell) return refuse('this cell does not sell in bilateral deals');
    if (cfp.lastInterval < cfp.firstInterval || cfp.lastInterval - cfp.firstInterval > 95n)
      return refuse(`interval range ${cfp.firstInterval}-${cfp.lastInterval} not accepted`);
    const intervals = intervalsOf(cfp.firstInterval, cfp.lastInterval);
    const free = intervals.map((t) => ledger.available(t, 'export')).reduce((a, b) => (b < a ? b : a));
    const offered = free < cfp.whPerInterval ? free : cfp.whPerInterval;
    if (offered <= 0n) return refuse('no capacity left in those intervals');
    const booked = await publicClient.readContract({
      address: parameters.channels,
      abi: debtChannelsAbi,
      functionName: 'bookedThrough',
      args: [meter],
    });
    if (booked >= cfp.firstInterval) return refuse(`meter ${meter} is booked through interval ${booked}`);
    const key = `deal:${cfp.conversation}`;
    try {
      for (const t of intervals)
        ledger.commit({ key, service: 'deals', interval: t, direction: 'export', wh: offered });
    } catch (error) {
      ledger.release(key);
      return refuse((error as Error).message);
    }
    const conversation: Conversation = {
      id: cfp.conversation,
      role: 'participant',
      state: 'collecting',
      whPerInterval: offered,
      firstInterval: cfp.firstInterval,
      lastInterval: cfp.lastInterval,
      deadline: cfp.deadline + config.deals.acceptWindowSeconds,
      proposals: new Map(),
    };
    conversations.set(cfp.conversation, conversation);
    metrics.proposalsSent++;
    logger.info('proposing', { conversation: cfp.conversation, buyer, wh: offered, price: dealPrice });
    await net.publish({
      type: 'propose',
      conversation: cfp.conversation,
      to: buyer,
      sellerMeter: meter,
      pricePerKWh: dealPrice,
      maxWhPerInterval: offered,
      validUntil: conversation.deadline,
    });
  });

  net.on('reject-proposal', (body, envelope) => {
    const conversation = conversations.get(body.conversation);
    if (body.to !== cell || !conversation || conversation.role !== 'participant') return;
    if (conversation.state !== 'collecting') return;
    conversation.state = 'failed';
    conversation.reason = `rejected: ${body.reason}`;
    ledger.release(`deal:${conversation.id}`);
    logger.info('proposal rejected', {
      conversation: conversation.id,
      by: senderCell(envelope),
      reason: body.reason,
    });
  });

  net.on('accept-proposal', async (body, envelope) => {
    const conversation = conversations.get(body.conversation);
    const buyer = senderCell(envelope);
    if (body.to !== cell || !conversation || conversation.role !== 'participant' || buyer === undefined)
      return;
    if (conversation.state !== 'collecting') return;
    const { deal } = body;
    const failure = async (reason: string) => {
      fail(conversation, reason);
      await net.publish({ type: 'failure', conversation: conversation.id, to: buyer, reason });
    };
    // The terms must be the ones proposed, and the buyer's own signature must be on them.
    const mismatch =
      deal.buyerCell !== buyer
        ? `buyerCell ${deal.buyerCell}, expected the sender's cell ${buyer}`
        : deal.sellerCell !== cell
          ? `sellerCell ${deal.sellerCell}, expected ${cell}`
          : deal.sellerMeter !== meter
            ? `sellerMeter ${deal.sellerMeter}, expected ${meter}`
            : deal.pricePerKWh !== dealPrice
              ? `price ${deal.pricePerKWh}, expected ${dealPrice}`
              : deal.maxWhPerInterval > conversation.whPerInterval
                ? `maxWhPerInterval ${deal.maxWhPerInterval}, expected at most ${conversation.whPerInterval}`
                : deal.firstInterval !== conversation.firstInterval ||
                    deal.lastInterval !== conversation.lastInterval
                  ? `intervals ${deal.firstInterval}-${deal.lastInterval}, expected ${conversation.firstInterval}-${conversation.lastInterval}`
                  : undefined;
    if (mismatch) return failure(`terms differ from the proposal: ${mismatch}`);
    const signer = await recoverDealSigner(parameters.channelsDomain, deal, body.buyerSignature);
    const buyerAgent = await directory.agentOf(buyer);
    if (signer !== buyerAgent)
      return failure(`the deal is signed by ${signer}, expected the buyer's agent ${buyerAgent}`);
    for (const t of intervalsOf(deal.firstInterval, deal.lastInterval))
      ledger.resize(`deal:${conversation.id}`, t, 'export', deal.maxWhPerInterval);
    conversation.state = 'accepted';
    conversation.deal = deal;
    metrics.accepted++;
    const { signature } = await signDeal(account, parameters.channelsDomain, deal);
    let transaction: Hex;
    try {
      const receipt = await tx.send({
        address: parameters.channels,
        abi: debtChannelsAbi,
        functionName: 'open',
        args: [deal, toChannelSignature(body.buyerSignature), toChannelSignature(signature)],
      });
      transaction = receipt.transactionHash;
    } catch (error) {
      return failure(`opening the channel failed: ${firstLine(error)}`);
    }
    const channel = channelId(parameters.channelsDomain, deal);
    conversation.state = 'open';
    conversation.channel = channel;
    metrics.dealsOpened++;
    logger.info('deal opened as seller', { conversation: conversation.id, channel, buyer, transaction });
    parameters.onDealOpened(deal, channel, 'seller');
    await net.publish({ type: 'inform', conversation: conversation.id, to: buyer, channel, transaction });
  });

  // Initiator (buyer).
  net.on('propose', (body, envelope) => {
    const conversation = conversations.get(body.conversation);
    const seller = senderCell(envelope);
    if (body.to !== cell || !conversation || conversation.role !== 'initiator' || seller === undefined)
      return;
    if (conversation.state !== 'collecting') return;
    if (body.pricePerKWh > config.preferences.maxBuyPrice) {
      logger.info('proposal above the maximum buy price', {
        conversation: conversation.id,
        seller,
        price: body.pricePerKWh,
      });
    }
    conversation.proposals.set(seller, body);
  });

  net.on('refuse', (body, envelope) => {
    if (body.to !== cell) return;
    logger.info('cfp refused by a seller', {
      conversation: body.conversation,
      seller: senderCell(envelope),
      reason: body.reason,
    });
  });

  net.on('inform', async (body, envelope) => {
    const conversation = conversations.get(body.conversation);
    if (body.to !== cell || !conversation || conversation.role !== 'initiator' || !conversation.deal) return;
    if (conversation.state !== 'accepted' || senderCell(envelope) !== conversation.deal.sellerCell) return;
    const expected = channelId(parameters.channelsDomain, conversation.deal);
    if (body.channel !== expected)
      return fail(conversation, `inform names channel ${body.channel}, expected ${expected}`);
    // Trust the chain, not the message.
    const state = await publicClient.readContract({
      address: parameters.channels,
      abi: debtChannelsAbi,
      functionName: 'channelOf',
      args: [expected, conversation.deal.sellerMeter],
    });
    if (state.status !== 1)
      return fail(conversation, `channel ${expected} is not open on chain (status ${state.status})`);
    conversation.state = 'open';
    conversation.channel = expected;
    metrics.dealsOpened++;
    logger.info('deal opened as buyer', {
      conversation: conversation.id,
      channel: expected,
      transaction: body.transaction,
    });
    parameters.onDealOpened(conversation.deal, expected, 'buyer');
  });

  net.on('failure', (body, envelope) => {
    const conversation = conversations.get(body.conversation);
    if (body.to !== cell || !conversation || conversation.role !== 'initiator') return;
    if (senderCell(envelope) !== conversation.deal?.sellerCell) return;
    fail(conversation, `the seller reported: ${body.reason}`);
  });

  async function decide(conversation: Conversation) {
    const candidates = [...conversation.proposals.entries()]
      .filter(([, p]) => p.pricePerKWh <= config.preferences.maxBuyPrice && p.validUntil >= now())
      .sort(([ca, a], [cb, b]) =>
        a.pricePerKWh !== b.pricePerKWh
          ? a.pricePerKWh < b.pricePerKWh
            ? -1
            : 1
          : a.maxWhPerInterval !== b.maxWhPerInterval
            ? a.maxWhPerInterval > b.maxWhPerInterval
              ? -1
              : 1
            : ca < cb
              ? -1
              : 1,
      );
    const best = candidates[0];
    for (const [seller] of conversation.proposals) {
      if (best && seller === best[0]) continue;
      metrics.rejected++;
      await net.publish({
        type: 'reject-proposal',
        conversation: conversation.id,
        to: seller,
        reason: 'another proposal was chosen',
      });
    }
    if (!best) return fail(conversation, `no acceptable proposal (${conversation.proposals.size} received)`);
    const [seller, proposal] = best;
    const wh =
      proposal.maxWhPerInterval < conversation.whPerInterval
        ? proposal.maxWhPerInterval
        : conversation.whPerInterval;
    const intervals = BigInt(intervalsOf(conversation.firstInterval, conversation.lastInterval).length);
    const deal: Deal = {
      buyerCell: cell,
      sellerCell: seller,
      sellerMeter: proposal.sellerMeter,
      pricePerKWh: proposal.pricePerKWh,
      maxWhPerInterval: wh,
      firstInterval: conversation.firstInterval,
      lastInterval: conversation.lastInterval,
      // Enough to pay the whole deal: vouchers never exceed it.
      collateral: escrowFor(wh * intervals, proposal.pricePerKWh),
      expiry: BigInt(now() + config.deals.acceptWindowSeconds),
      salt: randomBytes(8).readBigUInt64BE(),
    };
    const key = `deal:${conversation.id}`;
    try {
      for (const t of intervalsOf(deal.firstInterval, deal.lastInterval))
        ledger.commit({ key, service: 'deals', interval: t, direction: 'import', wh });
    } catch (error) {
      ledger.release(key);
      await net.publish({
        type: 'reject-proposal',
        conversation: conversation.id,
        to: seller,
        reason: 'capacity taken meanwhile',
      });
      return fail(conversation, (error as Error).message);
    }
    const { signature } = await signDeal(account, parameters.channelsDomain, deal);
    conversation.deal = deal;
    conversation.state = 'accepted';
    conversation.deadline = Number(deal.expiry);
    metrics.accepted++;
    logger.info('accepting proposal', { conversation: conversation.id, seller, wh, price: deal.pricePerKWh });
    await net.publish({
      type: 'accept-proposal',
      conversation: conversation.id,
      to: seller,
      deal,
      buyerSignature: signature,
      deadline: Number(deal.expiry),
    });
  }

  return {
    async callForProposals({ whPerInterval, firstInterval, lastInterval }) {
      const id = randomBytes(8).toString('hex');
      const deadline = now() + config.deals.cfpWindowSeconds;
      conversations.set(id, {
        id,
        role: 'initiator',
        state: 'collecting',
        whPerInterval,
        firstInterval,
        lastInterval,
        deadline,
        proposals: new Map(),
      });
      metrics.cfpsSent++;
      logger.info('call for proposals', {
        conversation: id,
        wh: whPerInterval,
        first: firstInterval,
        last: lastInterval,
        deadline,
      });
      await net.publish({
        type: 'cfp',
        conversation: id,
        whPerInterval,
        firstInterval,
        lastInterval,
        deadline,
      });
      return id;
    },
    async tick() {
      const t = now();
      for (const conversation of conversations.values()) {
        if (
          conversation.role === 'initiator' &&
          conversation.state === 'collecting' &&
          t >= conversation.deadline
        ) {
          await decide(conversation);
        } else if (conversation.state === 'accepted' && t > conversation.deadline + 60) {
          fail(conversation, 'no answer before the deal expired');
        } else if (
          conversation.role === 'participant' &&
          conversation.state === 'collecting' &&
          t > conversation.deadline
        ) {
          conversation.state = 'failed';
          conversation.reason = 'proposal expired';
          ledger.release(`deal:${conversation.id}`);
        }
      }
    },
    conversations: () => [...conversations.values()],
    metrics: () => ({ ...metrics }),
  };
}
