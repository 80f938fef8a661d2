import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { useKit } from '../../chain/test/kit.js';
import { CellType } from '../../chain/units/index.js';
import { agentTopics, type Envelope, encodeEnvelope } from '../messages/index.js';
import { testLogger, waitFor } from '../test/helpers.js';
import {
  type AgentNet,
  createAgentDirectory,
  createAgentNet,
  createGossipNode,
  signAgentBinding,
} from './index.js';

const kit = useKit();
const zone = 'net-test';
const log = testLogger('net-test');
let now = 0;
const clock = () => now;
const directory = createAgentDirectory({
  publicClient: kit.publicClient,
  registry: kit.manifest.contracts.registry,
  now: clock,
  logger: log,
});
const nets: AgentNet[] = [];
const stops: Array<() => Promise<void>> = [];

beforeAll(async () => {
  now = Number(await kit.chainTime());
});
afterAll(async () => {
  await Promise.all([...nets.map((n) => n.stop()), ...stops.map((s) => s())]);
  directory.stop();
});

async function agentNet(cell: Awaited<ReturnType<typeof kit.newCell>>, bootstrap: string[] = []) {
  const net = await createAgentNet({
    chainId: kit.manifest.chainId,
    registry: kit.manifest.contracts.registry,
    zone,
    sender: { cell: cell.id },
    account: cell.agent,
    directory,
    now: clock,
    logger: log.child(`cell-${cell.id}`),
    bootstrap,
  });
  nets.push(net);
  return net;
}

/** gossipsub's mesh for a topic (the implementation has it; the interface does not say so). */
function meshPeers(net: AgentNet, topic: string): number {
  return (net.node.services.pubsub as unknown as { getMeshPeers(t: string): string[] }).getMeshPeers(topic)
    .length;
}

describe('the agents network', () => {
  test('rejects and counts malformed, oversized and impersonating messages, ignores late ones, delivers the rest', async () => {
    const [a, b, r] = await Promise.all([
      kit.newCell(CellType.Prosumer, 0n),
      kit.newCell(CellType.Prosumer, 0n),
      kit.newCell(CellType.Prosumer, 0n),
    ]);
    const netA = await agentNet(a);
    const netB = await agentNet(b, netA.multiaddrs());
    // The rogue: a raw gossip node, registered on chain as cell r, that writes any bytes it likes.
    const rogue = await createGossipNode({ bootstrap: netA.multiaddrs() });
    stops.push(async () => {
      await rogue.stop();
    });
    const market = agentTopics.market(zone);
    rogue.services.pubsub.subscribe(market);
    await waitFor(
      'the rogue and B to see A subscribed',
      () => rogue.services.pubsub.getSubscribers(market).length >= 1 && netB.subscribers('market') >= 1,
    );

    const pingsAtA: string[] = [];
    netA.on('ping', (_body, envelope) => {
      pingsAtA.push('cell' in envelope.from ? `cell ${envelope.from.cell}` : 'service');
    });
    // A message of A that the rogue captures (it carries A's binding).
    let captured: Envelope | undefined;
    const peekB = netB.on('ping', (_body, envelope) => {
      captured = envelope;
    });
    await netA.publish({ type: 'ping', n: 1 });
    const fromA = await waitFor('B to receive A', () => captured);
    peekB();

    const rogueId = rogue.peerId.toString();
    const ownBinding = await signAgentBinding(
      r.agent,
      kit.manifest.chainId,
      kit.manifest.contracts.registry,
      { cell: r.id },
      rogueId,
      now + 3600,
    );
    const honest: Envelope = {
      v: 1,
      zone,
      from: { cell: r.id },
      binding: ownBinding,
      sentAt: now,
      body: { type: 'ping', n: 7 },
    };
    const send = (data: Uint8Array | string) =>
      rogue.services.pubsub.publish(market, typeof data === 'string' ? new TextEncoder().encode(data) : data);

    // A well-formed message of the rogue's own cell is delivered: its path works.
    await send(encodeEnvelope(honest));
    await waitFor('A to accept the honest message', () => pingsAtA.includes(`cell ${r.id}`));

    await send('{"v":1,"zone":"net-test","from":');
    await send(encodeEnvelope({ ...honest, body: { type: 'ping', n: -1 } } as unknown as Envelope));
    await send(
      encodeEnvelope({
        ...honest,
        body: { type: 'ping', n: 8, padding: 'x'.repeat(10_000) },
      } as unknown as Envelope),
    );
    await send(encodeEnvelope({ ...honest, v: 2 } as unknown as Envelope));
    // Speaks for cell a with a binding the rogue signed itself.
    await send(encodeEnvelope({ ...honest, from: { cell: a.id }, body: { type: 'ping', n: 9 } }));
    // Replays A's own binding from its own peer.
    await send(
      encodeEnvelope({
        ...honest,
        from: { cell: a.id },
        binding: fromA.binding,
        body: { type: 'ping', n: 10 },
      }),
    );
    // A cfp on the negotiation topic, and one from another zone.
    await rogue.services.pubsub.publish(
      agentTopics.negotiation(zone),
      encodeEnvelope({ ...honest, body: { type: 'ping', n: 11 } }),
    );
    await send(encodeEnvelope({ ...honest, zone: 'elsewhere', body: { type: 'ping', n: 12 } }));
    // Honest but late.
    await send(encodeEnvelope({ ...honest, sentAt: now - 3600, body: { type: 'ping', n: 13 } }));

    const expected = {
      malformed: 2,
      oversized: 1,
      version: 1,
      'not-agent': 1,
      'peer-mismatch': 1,
      'wrong-zone': 1,
    };
    await waitFor('A to count every bad message', () => {
      const m = netA.metrics();
      return (
        Object.entries(expected).every(([k, v]) => m.rejected[k as keyof typeof m.rejected] === v) &&
        m.ignored.late === 1
      );
    });
    const m = netA.metrics();
    // The ping on the negotiation topic is rejected only if A subscribed to it; it has.
    expect(m.rejected['wrong-topic']).toBe(1);
    expect(m.ignored).toEqual({ late: 1 });
    // The handlers saw only A's neighbours' honest pings: the rogue's once, never cell a's name.
    expect(pingsAtA).toEqual([`cell ${r.id}`]);
    expect(m.byType.ping).toBe(1);
    // Nothing bad was forwarded: B counted what it received from the rogue directly, if anything,
    // and delivered only A's ping and the rogue's honest one.
    expect(netB.metrics().byType.ping ?? 0).toBeLessThanOrEqual(2);
  });

  test('twelve agents on one host see every message', async () => {
    const cells = await Promise.all(Array.from({ length: 12 }, () => kit.newCell(CellType.Prosumer, 0n)));
    const group: AgentNet[] = [];
    for (const cell of cells) {
      const peers = [group[0], group.at(-1)].flatMap((net) => net?.multiaddrs() ?? []);
      group.push(await agentNet(cell, [...new Set(peers)]));
    }
    const seen = group.map(() => new Set<string>());
    group.forEach((net, i) => {
      net.on('ping', (body, envelope) => {
        seen[i]?.add(`${'cell' in envelope.from ? envelope.from.cell : 0n}:${body.n}`);
      });
    });
    const topic = agentTopics.market(zone);
    await waitFor('every agent to have mesh peers', () => group.every((net) => meshPeers(net, topic) >= 1));
    const perAgent = 5;
    for (let n = 0; n < perAgent; n++) {
      await Promise.all(group.map((net) => net.publish({ type: 'ping', n })));
    }
    const expected = (group.length - 1) * perAgent;
    await waitFor(`every agent to see ${expected} pings`, () => seen.every((s) => s.size === expected), {
      timeoutMs: 30_000,
    }).catch((error) => {
      throw new Error(`${error.message}; seen: ${seen.map((s) => s.size).join(',')}`);
    });
    for (const net of group) {
      const m = net.metrics();
      expect(m.rejected).toEqual({});
      expect(m.byType.ping).toBe(expected);
    }
    // Twelve cells on chain, twelve nodes and a gossipsub mesh: on a loaded two-core machine
    // the waits inside (mesh up to 20 s, pings up to 30 s) need more than the default 60 s.
  }, 120_000);
});
