/**
 * The agents' network: a gossip node, the zone's three topics, and a validator on each that
 * accepts a message only when it is a well-formed envelope of this version and zone, on its
 * topic, within size, from the libp2p peer its binding names, with a binding signed by the
 * on-chain agent of the cell it speaks for (or by the service it names). Malformed, oversized
 * and impersonating messages are rejected (gossipsub then lowers the sender's score); late
 * ones are ignored; both are counted by reason.
 */
import './polyfill.js';
import { TopicValidatorResult } from '@libp2p/gossipsub';
import type { PeerId, PrivateKey } from '@libp2p/interface';
import type { Address, LocalAccount } from 'viem';
import type { Logger } from '../../chain/logger/index.js';
import {
  agentTopics,
  type Body,
  type BodyOf,
  type BodyType,
  DEFAULT_MAX_MESSAGE_BYTES,
  deadlineOf,
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  type Sender,
  senderLabel,
  type TopicKind,
  topicOf,
  WIRE_VERSION,
} from '../messages/index.js';
import { type AgentBinding, recoverAgentBindingSigner, signAgentBinding } from './binding.js';
import type { AgentDirectory } from './directory.js';
import { createGossipNode, type GossipNode } from './gossipNode.js';

export { type AgentBinding, recoverAgentBindingSigner, signAgentBinding } from './binding.js';
export { type AgentDirectory, createAgentDirectory } from './directory.js';
export { createGossipNode, type GossipNode } from './gossipNode.js';

/** Why a message was rejected (the sender is penalised) or ignored (it is not). */
export type RejectReason =
  | 'oversized'
  | 'malformed'
  | 'version'
  | 'wrong-topic'
  | 'wrong-zone'
  | 'unsigned'
  | 'peer-mismatch'
  | 'binding-expired'
  | 'not-agent';
export type IgnoreReason = 'late' | 'early' | 'lookup-failed';

export interface NetMetrics {
  /** Messages the validators saw (each unique message once). */
  received: number;
  accepted: number;
  rejected: Partial<Record<RejectReason, number>>;
  ignored: Partial<Record<IgnoreReason, number>>;
  /** Accepted messages by type. */
  byType: Partial<Record<BodyType, number>>;
  published: number;
  handlerErrors: number;
  peers: number;
}

export type MessageHandler<T extends BodyType> = (
  body: BodyOf<T>,
  envelope: Envelope,
) => void | Promise<void>;

export interface AgentNet {
  peerId: PeerId;
  multiaddrs(): string[];
  /** Peers connected now. */
  peers(): number;
  /** Peers subscribed to one of the zone's topics. */
  subscribers(kind: TopicKind): number;
  /** Signs nothing itself: wraps `body` in an envelope with this node's binding and publishes it. */
  publish(body: Body): Promise<{ recipients: number }>;
  /** Calls `handler` for every accepted message of `type`; returns an unsubscribe function. */
  on<T extends BodyType>(type: T, handler: MessageHandler<T>): () => void;
  metrics(): NetMetrics;
  /** The underlying node (tests, diagnostics). */
  node: GossipNode;
  stop(): Promise<void>;
}

export interface CreateAgentNetParameters {
  chainId: number;
  /** The CellRegistry: the binding's verifying contract. */
  registry: Address;
  zone: string;
  /** Whom this node speaks for. */
  sender: Sender;
  /** The key that signs the binding: the cell's agent key, or the service's key. */
  account: LocalAccount;
  directory: AgentDirectory;
  /** The current time, Unix seconds, as the owner last read its clock. */
  now: () => number;
  logger: Logger;
  listen?: string[];
  bootstrap?: string[];
  mdns?: boolean;
  privateKey?: PrivateKey;
  maxMessageBytes?: number;
  /** A message sent longer ago than this is late and ignored. Default 120 s. */
  maxAgeSeconds?: number;
  /** A message stamped further ahead than this is ignored (clock skew). Default 30 s. */
  maxSkewSeconds?: number;
  /** How long a binding this node signs is valid. Default one day. */
  bindingLifetimeSeconds?: number;
}

/**
 * Starts the node, signs its binding, subscribes to the zone's topics and installs the
 * validators.
 * @example
 * const net = await createAgentNet({ chainId, registry, zone: 'z1', sender: { cell: 7n },
 *   account: agentKey, directory, now: () => currentTime, logger });
 * net.on('cfp', (cfp, envelope) => { ... });
 * await net.publish({ type: 'ping', n: 1 });
 */
export async function createAgentNet(parameters: CreateAgentNetParameters): Promise<AgentNet> {
  const { chainId, registry, zone, sender, account, directory, now, logger } = parameters;
  const maxBytes = parameters.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const maxAge = parameters.maxAgeSeconds ?? 120;
  const maxSkew = parameters.maxSkewSeconds ?? 30;
  const lifetime = parameters.bindingLifetimeSeconds ?? 86_400;

  const node = await createGossipNode({
    ...(parameters.listen ? { listen: parameters.listen } : {}),
    ...(parameters.bootstrap ? { bootstrap: parameters.bootstrap } : {}),
    ...(parameters.mdns !== undefined ? { mdns: parameters.mdns } : {}),
    ...(parameters.privateKey ? { privateKey: parameters.privateKey } : {}),
    maxInboundDataLength: Math.max(4 * maxBytes, 64 * 1024),
  });
  const pubsub = node.services.pubsub;
  const peerId = node.peerId.toString();

  let binding: AgentBinding = await signAgentBinding(
    account,
    chainId,
    registry,
    sender,
    peerId,
    now() + lifetime,
  );
  async function currentBinding(): Promise<AgentBinding> {
    // Renew when less than a tenth of the lifetime is left.
    if (binding.expiry - now() < lifetime / 10) {
      binding = await signAgentBinding(account, chainId, registry, sender, peerId, now() + lifetime);
      logger.info('binding renewed', { peerId, expiry: binding.expiry });
    }
    return binding;
  }

  const metrics: NetMetrics = {
    received: 0,
    accepted: 0,
    rejected: {},
    ignored: {},
    byType: {},
    published: 0,
    handlerErrors: 0,
    peers: 0,
  };
  const signers = new Map<string, Promise<Address>>();
  const accepted = new WeakMap<Uint8Array, Envelope>();
  const handlers = new Map<BodyType, Set<MessageHandler<BodyType>>>();

  const topicKinds = new Map<string, TopicKind>(
    (['market', 'negotiation', 'services'] as const).map((kind) => [agentTopics[kind](zone), kind]),
  );

  function reject(reason: RejectReason, detail: string, from: string): TopicValidatorResult {
    metrics.rejected[reason] = (metrics.rejected[reason] ?? 0) + 1;
    logger.warn('message rejected', { reason, from, detail });
    return TopicValidatorResult.Reject;
  }
  function ignore(reason: IgnoreReason, detail: string, from: string): TopicValidatorResult {
    metrics.ignored[reason] = (metrics.ignored[reason] ?? 0) + 1;
    logger.debug('message ignored', { reason, from, detail });
    return TopicValidatorResult.Ignore;
  }

  /** The key that signed a binding, verified once per (sender, binding). */
  function signerOf(claimed: Sender, b: AgentBinding): Promise<Address> {
    const key = `${senderLabel(claimed)}|${b.peerId}|${b.expiry}|${b.signature.r}|${b.signature.vs}`;
    let signer = signers.get(key);
    if (!signer) {
      signer = recoverAgentBindingSigner(chainId, registry, claimed, b);
      signers.set(key, signer);
      if (signers.size > 10_000) signers.delete(signers.keys().next().value as string);
    }
    return signer;
  }

  async function validate(topic: string, from: PeerId | undefined, data: Uint8Array) {
    metrics.received++;
    const source = from?.toString() ?? 'unknown';
    const kind = topicKinds.get(topic);
    if (!kind) return reject('wrong-topic', `received a message on ${topic}`, source);
    if (!from) return reject('unsigned', 'the message carries no sender (StrictSign expected)', source);
    const decoded = decodeEnvelope(data, maxBytes);
    if (!decoded.ok) return reject(decoded.reason, decoded.detail, source);
    const envelope = decoded.envelope;
    const { body } = envelope;
    if (envelope.zone !== zone)
      return reject('wrong-zone', `received zone ${envelope.zone}, expected ${zone}`, source);
    if (topicOf[body.type] !== kind)
      return reject(
        'wrong-topic',
        `received ${body.type} on ${kind}, expected it on ${topicOf[body.type]}`,
        source,
      );
    if (envelope.binding.peerId !== source) {
      return reject(
        'peer-mismatch',
        `the binding names peer ${envelope.binding.peerId}, the message came from ${source}`,
        source,
      );
    }
    const t = now();
    if (envelope.binding.expiry < t)
      return reject('binding-expired', `binding expired at ${envelope.binding.expiry}, now ${t}`, source);
    let signer: Address;
    let expected: Address;
    try {
      signer = await signerOf(envelope.from, envelope.binding);
      expected =
        'cell' in envelope.from ? await directory.agentOf(envelope.from.cell) : envelope.from.service;
    } catch (error) {
      return ignore('lookup-failed', `cannot check the sender: ${(error as Error).message}`, source);
    }
    if (signer.toLowerCase() !== expected.toLowerCase()) {
      return reject(
        'not-agent',
        `${senderLabel(envelope.from)}: the binding was signed by ${signer}, expected ${expected}`,
        source,
      );
    }
    if (envelope.sentAt < t - maxAge) return ignore('late', `sent at ${envelope.sentAt}, now ${t}`, source);
    if (envelope.sentAt > t + maxSkew) return ignore('early', `sent at ${envelope.sentAt}, now ${t}`, source);
    const deadline = deadlineOf(body);
    if (deadline !== undefined && deadline < t)
      return ignore('late', `${body.type} deadline ${deadline} passed, now ${t}`, source);
    metrics.accepted++;
    metrics.byType[body.type] = (metrics.byType[body.type] ?? 0) + 1;
    accepted.set(data, envelope);
    return TopicValidatorResult.Accept;
  }

  for (const topic of topicKinds.keys()) {
    pubsub.topicValidators.set(topic, (_peer, message) =>
      validate(message.topic, message.type === 'signed' ? message.from : undefined, message.data),
    );
    pubsub.subscribe(topic);
  }

  pubsub.addEventListener('message', (event) => {
    const message = event.detail;
    if (!topicKinds.has(message.topic)) return;
    const envelope = accepted.get(message.data);
    // Only messages a validator accepted reach the handlers.
    if (!envelope) return;
    const set = handlers.get(envelope.body.type);
    if (!set) return;
    for (const handler of set) {
      Promise.resolve()
        .then(() => handler(envelope.body, envelope))
        .catch((error) => {
          metrics.handlerErrors++;
          logger.error('message handler failed', {
            type: envelope.body.type,
            from: senderLabel(envelope.from),
            error,
          });
        });
    }
  });

  const onConnect = () => {
    metrics.peers = node.getPeers().length;
  };
  node.addEventListener('peer:connect', onConnect);
  node.addEventListener('peer:disconnect', onConnect);

  logger.info('network up', {
    peerId,
    zone,
    speaksFor: senderLabel(sender),
    listen: node.getMultiaddrs().map(String).join(','),
  });

  let stopped = false;
  return {
    peerId: node.peerId,
    node,
    multiaddrs: () => node.getMultiaddrs().map(String),
    peers: () => node.getPeers().length,
    subscribers: (kind) => pubsub.getSubscribers(agentTopics[kind](zone)).length,
    async publish(body) {
      const envelope: Envelope = {
        v: WIRE_VERSION,
        zone,
        from: sender,
        binding: await currentBinding(),
        sentAt: now(),
        body,
      };
      const data = encodeEnvelope(envelope);
      if (data.byteLength > maxBytes) {
        throw new Error(`${body.type} message is ${data.byteLength} bytes, the limit is ${maxBytes}`);
      }
      const result = await pubsub.publish(agentTopics[topicOf[body.type]](zone), data);
      metrics.published++;
      return { recipients: result.recipients.length };
    },
    on(type, handler) {
      let set = handlers.get(type);
      if (!set) {
        set = new Set();
        handlers.set(type, set);
      }
      set.add(handler as unknown as MessageHandler<BodyType>);
      return () => set.delete(handler as unknown as MessageHandler<BodyType>);
    },
    metrics: () => ({
      ...metrics,
      rejected: { ...metrics.rejected },
      ignored: { ...metrics.ignored },
      byType: { ...metrics.byType },
      peers: node.getPeers().length,
    }),
    async stop() {
      if (stopped) return;
      stopped = true;
      await node.stop();
      logger.info('network down', { peerId });
    },
  };
}
