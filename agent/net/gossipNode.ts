/**
 * A libp2p 3 node for the agents: TCP, noise, yamux, identify, gossipsub with StrictSign,
 * bootstrap peers and mDNS (FIELD.md, "libp2p 3 + gossipsub"). Import order matters: the
 * polyfill comes first, before libp2p loads.
 */
import './polyfill.js';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { bootstrap } from '@libp2p/bootstrap';
import { type GossipSub, gossipsub, StrictSign } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { Libp2p, PrivateKey } from '@libp2p/interface';
import { mdns } from '@libp2p/mdns';
import { tcp } from '@libp2p/tcp';
import { createLibp2p } from 'libp2p';

export type GossipNode = Libp2p<{ identify: unknown; pubsub: GossipSub }>;

export interface CreateGossipNodeParameters {
  /** Listen addresses; default one TCP port on loopback. */
  listen?: string[];
  /** Multiaddrs (with /p2p/ id) of peers to join through. */
  bootstrap?: string[];
  /** Discover peers on the local network. Default false. */
  mdns?: boolean;
  /** The node's libp2p identity; a fresh Ed25519 key when absent. */
  privateKey?: PrivateKey;
  /**
   * Largest message gossipsub decodes at all, bytes; larger ones are dropped before any
   * validator sees them. Keep it above the validator's limit so oversized messages get counted.
   */
  maxInboundDataLength?: number;
  /**
   * IPs whose many co-located peers are not penalised (gossipsub's IP colocation score):
   * without 127.0.0.1 here, more than about ten agents on one host get graylisted.
   */
  colocationWhitelist?: string[];
}

/**
 * Creates (and starts) a gossip node. Discovered peers are dialled, since neither mDNS nor
 * the bootstrap list dials by itself.
 */
export async function createGossipNode(parameters: CreateGossipNodeParameters = {}): Promise<GossipNode> {
  const peerDiscovery = [
    ...(parameters.bootstrap && parameters.bootstrap.length > 0
      ? [bootstrap({ list: parameters.bootstrap, timeout: 50 })]
      : []),
    ...(parameters.mdns ? [mdns({ interval: 5000 })] : []),
  ];
  const node = (await createLibp2p({
    ...(parameters.privateKey ? { privateKey: parameters.privateKey } : {}),
    addresses: { listen: parameters.listen ?? ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery,
    connectionManager: { maxConnections: 300, inboundConnectionThreshold: 100 },
    services: {
      identify: identify(),
      pubsub: gossipsub({
        globalSignaturePolicy: StrictSign,
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        maxInboundDataLength: parameters.maxInboundDataLength ?? 64 * 1024,
        scoreParams: {
          IPColocationFactorWhitelist: new Set(parameters.colocationWhitelist ?? ['127.0.0.1']),
        },
      }),
    },
  })) as unknown as GossipNode;
  node.addEventListener('peer:discovery', (event) => {
    const { id, multiaddrs } = event.detail;
    if (node.status !== 'started' || id.equals(node.peerId)) return;
    if (node.getConnections(id).length > 0) return;
    node.dial(multiaddrs.length > 0 ? multiaddrs : id).catch(() => {
      // An unreachable peer is retried at its next discovery; nothing to do now.
    });
  });
  return node;
}
