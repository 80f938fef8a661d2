/**
 * Who may speak for a cell: CellRegistry.agentOf(cell), cached for a TTL and dropped at once
 * when the registry says the agent changed (AgentConfigured, or UserChanged, which clears it).
 * The same for service subscriptions (isSubscribed), which plug & play reads.
 */
import type { Address, Chain, PublicClient, Transport } from 'viem';
import { cellRegistryAbi } from '../../chain/abi/contracts.generated.js';
import type { Logger } from '../../chain/logger/index.js';

export interface AgentDirectory {
  /** The cell's agent key (zero address for none or an unknown cell). */
  agentOf(cell: bigint): Promise<Address>;
  /** Whether the cell subscribed to `service` on chain. */
  isSubscribed(cell: bigint, service: Address): Promise<boolean>;
  /** Forgets what is cached about a cell. */
  invalidate(cell: bigint): void;
  /** Lookups that went to the chain (the rest came from the cache). */
  chainReads(): number;
  stop(): void;
}

export interface CreateAgentDirectoryParameters {
  publicClient: PublicClient<Transport, Chain>;
  registry: Address;
  /** The current time, Unix seconds (the agent's clock, as last read). */
  now: () => number;
  /** How long an answer is trusted without an event, seconds. Default 300. */
  ttlSeconds?: number;
  /** Watch the registry's events to drop stale entries at once. Default true. */
  watch?: boolean;
  logger: Logger;
}

interface Entry<T> {
  value: Promise<T>;
  at: number;
}

/** Creates the directory of on-chain agents. */
export function createAgentDirectory(parameters: CreateAgentDirectoryParameters): AgentDirectory {
  const { publicClient, registry, now, logger } = parameters;
  const ttl = parameters.ttlSeconds ?? 300;
  const agents = new Map<bigint, Entry<Address>>();
  const subscriptions = new Map<string, Entry<boolean>>();
  let reads = 0;

  function cached<K, T>(map: Map<K, Entry<T>>, key: K, load: () => Promise<T>): Promise<T> {
    const hit = map.get(key);
    if (hit && now() - hit.at < ttl) return hit.value;
    reads++;
    const value = load();
    map.set(key, { value, at: now() });
    // A failed read is not cached: the next message asks again.
    value.catch(() => map.delete(key));
    return value;
  }

  function invalidate(cell: bigint) {
    agents.delete(cell);
    for (const key of subscriptions.keys()) if (key.startsWith(`${cell}:`)) subscriptions.delete(key);
  }

  const unwatch: Array<() => void> = [];
  if (parameters.watch ?? true) {
    for (const eventName of [
      'AgentConfigured',
      'UserChanged',
      'ServiceSubscribed',
      'ServiceUnsubscribed',
    ] as const) {
      unwatch.push(
        publicClient.watchContractEvent({
          address: registry,
          abi: cellRegistryAbi,
          eventName,
          onLogs: (logs) => {
            for (const log of logs) {
              const cell = (log.args as { cellId?: bigint }).cellId;
              if (cell === undefined) continue;
              logger.debug('registry changed: cache dropped', { event: eventName, cell });
              invalidate(cell);
            }
          },
          onError: (error) => logger.warn('cannot watch the registry', { event: eventName, error }),
        }),
      );
    }
  }

  return {
    agentOf: (cell) =>
      cached(agents, cell, () =>
        publicClient.readContract({
          address: registry,
          abi: cellRegistryAbi,
          functionName: 'agentOf',
          args: [cell],
        }),
      ),
    isSubscribed: (cell, service) =>
      cached(subscriptions, `${cell}:${service.toLowerCase()}`, () =>
        publicClient.readContract({
          address: registry,
          abi: cellRegistryAbi,
          functionName: 'isSubscribed',
          args: [cell, service],
        }),
      ),
    invalidate,
    chainReads: () => reads,
    stop() {
      for (const u of unwatch.splice(0)) u();
    },
  };
}
