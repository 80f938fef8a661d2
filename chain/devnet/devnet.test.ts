import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWalletClient, http } from 'viem';
import { describe, expect, it } from 'vitest';
import {
  abiHash,
  cellWalletsAbi,
  clearingPoolAbi,
  debtChannelsAbi,
  devnetTokenAbi,
} from '../abi/contracts.generated.js';
import { readManifest } from '../manifest/index.js';
import { useKit } from '../test/kit.js';
import { defaultPoolParameters, deployCore, devnetAccount, startAnvil } from './index.js';

const kit = useKit();

describe('gridcell devnet', () => {
  it('the manifest names deployed contracts with the pool and channel parameters and the ABI hash', async () => {
    const { contracts, pool, channels } = kit.manifest;
    for (const address of Object.values(contracts)) {
      expect(await kit.publicClient.getCode({ address }), address).toMatch(/^0x[0-9a-f]{100,}$/);
    }
    expect(kit.manifest.abiHash).toBe(abiHash);
    const read = (
      functionName: 'intervalSeconds' | 'gateClosureLead' | 'settlementWindow' | 'maxOrdersPerInterval',
    ) => kit.publicClient.readContract({ address: contracts.pool, abi: clearingPoolAbi, functionName });
    expect(await read('intervalSeconds')).toBe(pool.intervalSeconds);
    expect(await read('gateClosureLead')).toBe(pool.gateClosureLead);
    expect(await read('settlementWindow')).toBe(pool.settlementWindow);
    expect(await read('maxOrdersPerInterval')).toBe(pool.maxOrdersPerInterval);
    const readChannels = (
      functionName: 'intervalSeconds' | 'challengeWindow' | 'withdrawalDelay' | 'registry' | 'wallets',
    ) => kit.publicClient.readContract({ address: contracts.channels, abi: debtChannelsAbi, functionName });
    expect(channels).toEqual({ challengeWindow: 14_400n, withdrawalDelay: 18_000n });
    expect(await readChannels('challengeWindow')).toBe(channels.challengeWindow);
    expect(await readChannels('withdrawalDelay')).toBe(channels.withdrawalDelay);
    expect(await readChannels('intervalSeconds')).toBe(pool.intervalSeconds);
    expect(await readChannels('registry')).toBe(contracts.registry);
    expect(await readChannels('wallets')).toBe(contracts.wallets);
    for (const market of [contracts.pool, contracts.channels]) {
      expect(
        await kit.publicClient.readContract({
          address: contracts.wallets,
          abi: cellWalletsAbi,
          functionName: 'isMarket',
          args: [market],
        }),
        market,
      ).toBe(true);
    }
  });

  it('the development accounts hold devnet tokens', async () => {
    const balance = await kit.publicClient.readContract({
      address: kit.manifest.contracts.token,
      abi: devnetTokenAbi,
      functionName: 'balanceOf',
      args: [devnetAccount(9).address],
    });
    expect(balance).toBeGreaterThanOrEqual(100_000_000_000n);
  });

  it('error: channel parameters the contract would refuse fail before anything is deployed', async () => {
    const walletClient = createWalletClient({
      chain: kit.chain,
      transport: http(kit.rpcUrl),
      account: devnetAccount(8),
    });
    const nonce = await kit.publicClient.getTransactionCount({ address: devnetAccount(8).address });
    await expect(
      deployCore({
        publicClient: kit.publicClient,
        walletClient,
        pool: defaultPoolParameters,
        channels: { challengeWindow: 3600n, withdrawalDelay: 3600n },
      }),
    ).rejects.toThrow(
      /expected 0 < challengeWindow < withdrawalDelay < 2\^32 - 1, received challengeWindow=3600, withdrawalDelay=3600/,
    );
    expect(await kit.publicClient.getTransactionCount({ address: devnetAccount(8).address })).toBe(nonce);
  });

  it('error: a second anvil on a port in use says the port is in use', async () => {
    const port = Number(new URL(kit.rpcUrl).port);
    await expect(startAnvil({ port })).rejects.toThrow(`port ${port} is already in use`);
  });

  it('error: a manifest with a malformed address names the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridcell-manifest-'));
    const path = join(dir, 'deployment.json');
    const raw = JSON.parse(
      JSON.stringify(kit.manifest, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
    );
    raw.contracts.pool = '0x1234';
    writeFileSync(path, JSON.stringify(raw));
    expect(() => readManifest(path)).toThrow(/contracts\.pool: expected a 0x-prefixed 20-byte hex address/);
  });

  it('error: a missing manifest says how to make one', () => {
    expect(() => readManifest('/nonexistent/deployment.json')).toThrow(/gridcell devnet/);
  });
});
