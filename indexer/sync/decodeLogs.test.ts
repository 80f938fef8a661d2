import { decodeEventLog, type Hex } from 'viem';
import { describe, expect, it } from 'vitest';
import { useKit } from '../../chain/test/kit.js';
import { openChannelWithVoucher, runInterval } from '../test/scenario.js';
import { decodeLogs, type RpcLog, watchedContracts } from './decodeLogs.js';

const kit = useKit();

describe('decodeLogs', () => {
  it("decodes every gridcell event exactly as viem's decodeEventLog does", async () => {
    await runInterval(kit);
    await openChannelWithVoucher(kit);
    const watched = watchedContracts(kit.manifest);
    const logs = (await kit.publicClient.request({
      method: 'eth_getLogs',
      params: [{ address: [...watched.keys()] as Hex[], fromBlock: '0x0', toBlock: 'latest' }],
    })) as unknown as RpcLog[];
    const { events, unknown } = decodeLogs(logs, watched);
    expect(unknown).toEqual([]);
    expect(events).toHaveLength(logs.length);
    const names = new Set<string>();
    events.forEach((event, i) => {
      const log = logs[i] as RpcLog;
      const item = watched.get(log.address.toLowerCase())?.events.get(log.topics[0] as Hex);
      if (!item) throw new Error('no ABI item');
      const viem = decodeEventLog({ abi: [item], data: log.data, topics: log.topics as [Hex, ...Hex[]] });
      expect(event.eventName).toBe(viem.eventName);
      expect(event.args).toStrictEqual(viem.args);
      names.add(event.eventName);
    });
    // The pool, the registry, the wallets and the channels all took part.
    for (const name of [
      'CellConnected',
      'Deposited',
      'OrderSubmitted',
      'PositionSettled',
      'ChannelOpened',
      'VoucherAccepted',
    ]) {
      expect(names).toContain(name);
    }
  });
});
