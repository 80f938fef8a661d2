import { type Abi, type AbiEvent, type Address, decodeEventLog, type Hex, toEventSelector } from 'viem';
import {
  cellRegistryAbi,
  cellWalletsAbi,
  clearingPoolAbi,
  debtChannelsAbi,
} from '../../chain/abi/contracts.generated.js';
import type { Manifest } from '../../chain/manifest/index.js';

/** The contracts the indexer reads, by the name stored with each event. */
export type ContractName = 'registry' | 'wallets' | 'pool' | 'channels';

/** A log as eth_getLogs returns it (hex quantities). */
export interface RpcLog {
  address: Hex;
  topics: Hex[];
  data: Hex;
  blockNumber: Hex;
  blockHash: Hex;
  transactionHash: Hex;
  logIndex: Hex;
  removed?: boolean;
}

/** A decoded gridcell event with where it happened. */
export interface DecodedEvent {
  blockNumber: number;
  blockHash: Hex;
  logIndex: number;
  txHash: Hex;
  contract: ContractName;
  address: Address;
  eventName: string;
  args: Record<string, unknown>;
}

interface Watched {
  contract: ContractName;
  events: Map<Hex, AbiEvent>;
}

/** Address (lower case) → the contract's name and its events by topic 0, from the generated ABIs. */
export function watchedContracts(manifest: Manifest): Map<string, Watched> {
  const byName: Record<ContractName, { address: Address; abi: Abi }> = {
    registry: { address: manifest.contracts.registry, abi: cellRegistryAbi },
    wallets: { address: manifest.contracts.wallets, abi: cellWalletsAbi },
    pool: { address: manifest.contracts.pool, abi: clearingPoolAbi },
    channels: { address: manifest.contracts.channels, abi: debtChannelsAbi },
  };
  const out = new Map<string, Watched>();
  for (const [contract, { address, abi }] of Object.entries(byName) as [
    ContractName,
    { address: Address; abi: Abi },
  ][]) {
    const events = new Map<Hex, AbiEvent>();
    for (const item of abi) if (item.type === 'event') events.set(toEventSelector(item), item);
    out.set(address.toLowerCase(), { contract, events });
  }
  return out;
}

/** JSON of decoded arguments: bigints as decimal strings. */
export function argsJson(args: Record<string, unknown>): string {
  return JSON.stringify(args, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}

/**
 * Decodes raw logs of the watched contracts; a log whose topic matches no event of its
 * contract is returned in `unknown` (an ABI that no longer matches the deployment).
 */
export function decodeLogs(
  logs: readonly RpcLog[],
  watched: Map<string, Watched>,
): { events: DecodedEvent[]; unknown: RpcLog[] } {
  const events: DecodedEvent[] = [];
  const unknown: RpcLog[] = [];
  for (const log of logs) {
    const w = watched.get(log.address.toLowerCase());
    const topic = log.topics[0];
    const item = w && topic ? w.events.get(topic) : undefined;
    if (!w || !item) {
      unknown.push(log);
      continue;
    }
    const decoded = decodeEventLog({
      abi: [item],
      data: log.data,
      topics: log.topics as [Hex, ...Hex[]],
      strict: true,
    });
    events.push({
      blockNumber: Number(BigInt(log.blockNumber)),
      blockHash: log.blockHash,
      logIndex: Number(BigInt(log.logIndex)),
      txHash: log.transactionHash,
      contract: w.contract,
      address: log.address,
      eventName: decoded.eventName,
      args: decoded.args as unknown as Record<string, unknown>,
    });
  }
  return { events, unknown };
}
