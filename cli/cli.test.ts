import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestClient, http, parseEther } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import { cellRegistryAbi } from '../chain/abi/contracts.generated.js';
import { useKit } from '../chain/test/kit.js';
import { signMeterReading, toSignedReadingArg } from '../chain/typed-data/index.js';
import type { Io } from './io.js';
import { run } from './main.js';

const kit = useKit();
const dir = mkdtempSync(join(tmpdir(), 'gridcell-cli-'));
const keystore = join(dir, 'keys');
const manifestPath = join(dir, 'deployment.json');
copyFileSync(kit.manifestPath, manifestPath);
const testClient = createTestClient({ chain: kit.chain, mode: 'anvil', transport: http(kit.rpcUrl) });
const L = kit.manifest.pool.intervalSeconds;

interface Result {
  code: number;
  out: string;
  err: string;
}

/** Runs one gridcell command line in-process, with GRIDCELL_PASSWORD set. */
async function gridcell(line: string, env: Record<string, string | undefined> = {}): Promise<Result> {
  let out = '';
  let err = '';
  const io: Io = {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    env: { GRIDCELL_PASSWORD: 'correct horse', ...env },
  };
  const argv = line.split(/\s+/).filter(Boolean);
  const extra =
    argv[0] === 'keys'
      ? ['--keystore', keystore]
      : argv[0] === 'deploy'
        ? []
        : ['--keystore', keystore, '--manifest', manifestPath];
  const code = await run([...argv, ...extra], io);
  return { code, out, err };
}

async function ok<T = Record<string, unknown>>(line: string): Promise<T> {
  const r = await gridcell(`${line} --json`);
  expect(r.err, `${line}`).toBe('');
  expect(r.code, line).toBe(0);
  return JSON.parse(r.out) as T;
}

async function fails(line: string, code = 1): Promise<string> {
  const r = await gridcell(line);
  expect(r.code, `${line} should fail: ${r.out}`).toBe(code);
  expect(r.err.trim().split('\n').length, r.err).toBeLessThanOrEqual(2);
  return r.err;
}

/** Imports a fresh key with 100 ETH and 100,000 dEUR under `name`. */
async function fundedKey(name: string) {
  const privateKey = generatePrivateKey();
  const account = privateKeyToAccount(privateKey);
  await testClient.setBalance({ address: account.address, value: parseEther('100') });
  const r = await gridcell(`keys import ${name}`, { GRIDCELL_PRIVATE_KEY: privateKey });
  expect(r.code, r.err).toBe(0);
  return account;
}

function faucet(to: `0x${string}`) {
  return kit.faucet(to, 100_000_000_000n);
}

describe('gridcell keys', () => {
  it('creates, imports and lists keys and never prints a private key', async () => {
    const created = await gridcell('keys create alice');
    expect(created.code, created.err).toBe(0);
    expect(created.out).toMatch(/^created alice {2}0x[0-9a-fA-F]{40}\n$/);
    const key = generatePrivateKey();
    const imported = await gridcell('keys import bob', { GRIDCELL_PRIVATE_KEY: key });
    expect(imported.out).toContain(privateKeyToAccount(key).address);
    expect(imported.out + imported.err).not.toContain(key.slice(2));
    const list = await ok<{ name: string; address: string }[]>('keys list');
    expect(list.map((k) => k.name)).toEqual(expect.arrayContaining(['alice', 'bob']));
  });

  it('error: without a password and without a terminal it says how to give one', async () => {
    const r = await gridcell('keys create carol', { GRIDCELL_PASSWORD: undefined });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/set GRIDCELL_PASSWORD/);
  });

  it('error: a wrong password is refused', async () => {
    await fundedKey('dave');
    const r = await gridcell('cells register --type prosumer --max-import-w 1 --max-export-w 1 --key dave', {
      GRIDCELL_PASSWORD: 'wrong',
    });
    expect(r.err).toMatch(/wrong password for key dave/);
  });
});

describe('gridcell cells and wallet', () => {
  it('registers a cell, shows it, changes its composition, deposits with a permit and withdraws', async () => {
    const owner = await fundedKey('owner1');
    await faucet(owner.address);
    const agent = privateKeyToAccount(generatePrivateKey()).address;
    const meter = privateKeyToAccount(generatePrivateKey()).address;
    const reg = await ok<{ cellId: string }>(
      `cells register --type prosumer --max-import-w 20000 --max-export-w 10000 --agent ${agent} --meter ${meter} --key owner1`,
    );
    const cell = reg.cellId;
    const shown = await ok(`cells show ${cell}`);
    expect(shown).toMatchObject({
      type: 'prosumer',
      status: 'connected',
      owner: owner.address,
      agent,
      maxImportW: 20000,
    });

    const meter2 = privateKeyToAccount(generatePrivateKey()).address;
    await ok(`cells add-meter ${cell} ${meter2} --key owner1`);
    await ok(`cells remove-meter ${cell} ${meter} --key owner1`);
    const registryMeterCell = await kit.publicClient.readContract({
      address: kit.manifest.contracts.registry,
      abi: cellRegistryAbi,
      functionName: 'cellOfMeter',
      args: [meter],
    });
    expect(registryMeterCell).toBe(0n);

    await ok(`wallet deposit ${cell} 250.5 --key owner1`);
    await ok(`wallet set-cap ${cell} 40 --key owner1`);
    expect(await ok(`wallet balance ${cell}`)).toMatchObject({
      available: '250500000',
      locked: '0',
      dailyCap: '40000000',
    });
    await ok(`wallet withdraw ${cell} 50 --key owner1`);
    expect(await ok(`wallet balance ${cell}`)).toMatchObject({ available: '200500000' });
    const text = await gridcell(`wallet balance ${cell}`);
    expect(text.out).toMatch(/200\.5 dEUR available, 0 dEUR locked; agent cap 40 dEUR/);
  });

  it('transfer changes the user: the agent is cleared and only the new owner withdraws', async () => {
    await fundedKey('seller1');
    const buyer = await fundedKey('buyer1');
    const { cellId: cell } = await ok<{ cellId: string }>(
      `cells register --type passive-consumer --max-import-w 5000 --max-export-w 0 --agent ${buyer.address} --key seller1`,
    );
    await ok(`cells transfer ${cell} ${buyer.address} --key seller1`);
    expect(await ok(`cells show ${cell}`)).toMatchObject({
      owner: buyer.address,
      agent: '0x0000000000000000000000000000000000000000',
    });
    const err = await fails(`wallet withdraw ${cell} 1 --key seller1`);
    expect(err).toMatch(/WalletNotCellOwner\(cellId=\d+, caller=0x/);
    await ok(`cells disconnect ${cell} --key buyer1`);
    expect(await ok(`cells show ${cell}`)).toMatchObject({ status: 'disconnected' });
  });

  it('error: bad arguments name the argument and what was expected', async () => {
    expect(await fails('cells show abc', 2)).toMatch(/invalid argument 1 "abc": expected a cell id/);
    expect(await fails('cells set-agent 1 0x12 --key owner1', 2)).toMatch(
      /invalid argument 2 "0x12": expected a 0x-prefixed 20-byte hex address/,
    );
    expect(await fails('wallet deposit 1 1.1234567 --key owner1', 2)).toMatch(
      /expected an amount like 12.5 \(at most 6 decimals\)/,
    );
    expect(
      await fails('cells register --type shop --max-import-w 1 --max-export-w 1 --key owner1', 2),
    ).toMatch(/invalid --type "shop": expected one of load-following-generator/);
    expect(await fails('wallet balance 1 --bogus', 2)).toMatch(/Unknown option '--bogus'/);
    expect(await fails('cells frobnicate', 2)).toMatch(
      /unknown action 'frobnicate': expected register, show/,
    );
    expect(await fails('market', 2)).toMatch(/say what to do: buy, sell, submit/);
  });

  it('error: a revert shows the decoded custom error, and a dead node names its URL', async () => {
    const err = await fails('wallet withdraw 1 999999 --key owner1');
    expect(err).toMatch(/withdraw reverted: Wallet\w+\(cellId=1/);
    expect(err).not.toMatch(/0x[0-9a-f]{8}[^0-9a-f]/);
    expect(await fails('wallet balance 1 --rpc http://127.0.0.1:1')).toMatch(
      /cannot reach the node at http:\/\/127\.0\.0\.1:1/,
    );
    expect(await fails('cells disconnect 1')).toMatch(/pass --key NAME/);
    // A key with no ETH: the node refuses the transaction; one line, no stack trace.
    const broke = generatePrivateKey();
    await gridcell('keys import broke', { GRIDCELL_PRIVATE_KEY: broke });
    const noGas = await fails('cells register --type prosumer --max-import-w 1 --max-export-w 1 --key broke');
    expect(noGas).toMatch(/^gridcell cells: .*(insufficient funds|exceeds the balance)/i);
    expect(noGas).not.toMatch(/\n\s+at /);
  });
});

describe('gridcell market', () => {
  it('places, relays, cancels, lists, clears and shows an interval', async () => {
    // One key owns both cells and is their agent: it signs the orders.
    const trader = await fundedKey('trader');
    await faucet(trader.address);
    const reg = (type: string) =>
      ok<{ cellId: string }>(
        `cells register --type ${type} --max-import-w 100000 --max-export-w 100000 --agent ${trader.address} --key trader`,
      );
    const seller = (await reg('stochastic-generator')).cellId;
    const buyer = (await reg('passive-consumer')).cellId;
    await ok(`wallet deposit ${buyer} 1000 --key trader`);
    await ok(`wallet set-cap ${buyer} unlimited --key trader`);

    const t = (await kit.chainTime()) / L + 3n;
    const sell = await ok<{ nonce: number }>(
      `market sell ${seller} --energy-wh 4000 --price 0.20 --interval ${t} --key trader`,
    );
    expect(sell.nonce).toBe(0);
    const printed = await gridcell(
      `market buy ${buyer} --energy-wh 3000 --price 0.30 --interval ${t} --print --key trader`,
    );
    const file = join(dir, 'signed.json');
    writeFileSync(file, printed.out);
    await fundedKey('relayer');
    await ok(`market submit ${file} --key relayer`);
    await ok(`market buy ${buyer} --energy-wh 500 --price 0.25 --interval ${t} --key trader`);
    await ok(`market cancel ${buyer} ${t} 1 --key trader`);

    const orders = await ok<{ status: string; nonce: number }[]>(`market orders ${buyer}`);
    expect(orders.filter((o) => o.status === 'cancelled').map((o) => o.nonce)).toEqual([1]);
    expect(await fails(`market clear ${t} --key relayer`)).toMatch(
      /clear reverted: PoolGateOpen\(interval=\d+, gateClosure=\d+\)/,
    );

    await kit.setChainTime(t * L - kit.manifest.pool.gateClosureLead);
    const cleared = await ok<{ price: string; volumeWh: string }>(`market clear ${t} --key relayer`);
    // Excess supply (4000 offered, 3000 wanted, the 500 Wh bid cancelled): the ask's limit.
    expect(cleared).toMatchObject({ price: '200000', volumeWh: '3000' });
    const shown = await ok<{ cleared: boolean; schedule: { cell: string; energyWh: string }[] }>(
      `market interval ${t}`,
    );
    expect(shown.cleared).toBe(true);
    expect(shown.schedule).toEqual(
      expect.arrayContaining([
        { cell: seller, side: 'sell', energyWh: '3000' },
        { cell: buyer, side: 'buy', energyWh: '3000' },
      ]),
    );
    expect(await fails(`market buy ${buyer} --energy-wh 1 --price 1 --interval ${t} --key trader`)).toMatch(
      /PoolGateClosed\(interval=\d+/,
    );
  });
});

describe('gridcell channel', () => {
  it('two agents sign a deal, it opens, the seller redeems a voucher, closes and settles', async () => {
    // Each cell's owner key is also its agent key: it signs the deal and the vouchers.
    const buyerKey = await fundedKey('chan-buyer');
    const sellerKey = await fundedKey('chan-seller');
    await fundedKey('chan-relayer');
    await faucet(buyerKey.address);
    const meter = privateKeyToAccount(generatePrivateKey());
    const seller = (
      await ok<{ cellId: string }>(
        `cells register --type prosumer --max-import-w 10000 --max-export-w 10000 --agent ${sellerKey.address} --meter ${meter.address} --key chan-seller`,
      )
    ).cellId;
    const buyer = (
      await ok<{ cellId: string }>(
        `cells register --type passive-consumer --max-import-w 10000 --max-export-w 0 --agent ${buyerKey.address} --key chan-buyer`,
      )
    ).cellId;
    await ok(`wallet deposit ${buyer} 100 --key chan-buyer`);
    await ok(`wallet set-cap ${buyer} unlimited --key chan-buyer`);

    const first = (await kit.chainTime()) / L + 2n;
    const proposed = await gridcell(
      `channel deal --buyer ${buyer} --seller ${seller} --meter ${meter.address} --price 0.20 --max-wh 2000 --first ${first} --last ${first + 3n} --collateral 1.6 --key chan-buyer`,
    );
    expect(proposed.code, proposed.err).toBe(0);
    const offer = JSON.parse(proposed.out);
    expect(offer).toMatchObject({ deal: { pricePerKWh: '200000', collateral: '1600000' } });
    expect(offer.buyerSignature).toMatch(/^0x[0-9a-f]{128}$/);
    expect(offer.sellerSignature).toBeUndefined();
    const offerFile = join(dir, 'deal-offer.json');
    writeFileSync(offerFile, proposed.out);
    expect(await fails(`channel open ${offerFile} --key chan-relayer`, 2)).toMatch(
      /the deal still needs the seller's signature/,
    );

    const accepted = await gridcell(`channel deal ${offerFile} --key chan-seller`);
    expect(accepted.code, accepted.err).toBe(0);
    const dealFile = join(dir, 'deal.json');
    writeFileSync(dealFile, accepted.out);
    const { channel } = JSON.parse(accepted.out) as { channel: string };
    expect(await ok(`channel open ${dealFile} --key chan-relayer`)).toMatchObject({ channel });
    expect(await ok(`wallet balance ${buyer}`)).toMatchObject({ available: '98400000' });

    // After the first interval: the meter counted 1500 Wh out, the buyer's agent owes 0.3.
    expect(await fails(`channel voucher ${dealFile} --seq 1 --wh 1500 --key chan-seller`)).toMatch(
      /is not the agent of the buyer, cell \d+: only it signs vouchers/,
    );
    const voucher = await gridcell(`channel voucher ${dealFile} --seq 1 --wh 1500 --key chan-buyer`);
    expect(voucher.code, voucher.err).toBe(0);
    expect(JSON.parse(voucher.out)).toMatchObject({
      voucher: { channel, seq: 1, cumulativeAmount: '300000' },
      r: expect.stringMatching(/^0x[0-9a-f]{64}$/),
      vs: expect.stringMatching(/^0x[0-9a-f]{64}$/),
    });
    const voucherFile = join(dir, 'voucher.json');
    writeFileSync(voucherFile, voucher.out);
    const reading = await signMeterReading(meter, kit.channelsDomain, {
      meter: meter.address,
      cell: BigInt(seller),
      interval: first,
      importWh: 0n,
      exportWh: 1500n,
      importCumWh: 0n,
      exportCumWh: 41_500n,
      seq: 7n,
    });
    const readingsFile = join(dir, 'readings.json');
    writeFileSync(
      readingsFile,
      JSON.stringify([toSignedReadingArg(reading)], (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
    );
    expect(
      await ok(
        `channel redeem ${dealFile} --voucher ${voucherFile} --readings ${readingsFile} --key chan-relayer`,
      ),
    ).toMatchObject({ amount: '300000', owed: '300000', paid: '300000', collateral: '1300000', seq: 1 });
    expect(
      await fails(
        `channel redeem ${dealFile} --voucher ${voucherFile} --readings ${readingsFile} --key chan-relayer`,
      ),
    ).toMatch(/redeem reverted: ChannelStaleVoucher\(channel=0x[0-9a-f]{64}, seq=1, latestSeq=1\)/);
    expect(await ok(`channel show ${channel}`)).toMatchObject({
      status: 'open',
      buyerCell: buyer,
      sellerCell: seller,
      paid: '300000',
      owed: '300000',
      seq: 1,
      baselineCumWh: '40000',
    });

    // The seller walks away from the rest of the deal; after the window anyone settles.
    const closing = await ok<{ closeDeadline: number }>(`channel close ${dealFile} --key chan-seller`);
    expect(await fails(`channel settle ${dealFile} --key chan-relayer`)).toMatch(
      new RegExp(`settle reverted: ChannelWindowOpen\\(deadline=${closing.closeDeadline}\\)`),
    );
    await kit.setChainTime(BigInt(closing.closeDeadline));
    expect(await ok(`channel settle ${dealFile} --key chan-relayer`)).toMatchObject({
      owed: '300000',
      paid: '300000',
      refunded: '1300000',
      debt: '0',
    });
    expect(await ok(`wallet balance ${buyer}`)).toMatchObject({ available: '99700000', locked: '0' });
    const shown = await gridcell(`channel show ${channel}`);
    expect(shown.out).toMatch(/^channel 0x[0-9a-f]{64}: closed\n {2}cell \d+ delivers to cell \d+/);
    // The close's deadline and outcome come from its events once the channel is closed.
    expect(shown.out).toMatch(new RegExp(`unilateral close: deadline ${closing.closeDeadline} \\(Unix s\\)`));
    expect(shown.out).toMatch(/closed: 0\.3 dEUR paid of 0\.3 dEUR owed, 1\.3 dEUR refunded, 0 dEUR debt/);
    expect(await ok(`channel show ${channel}`)).toMatchObject({
      status: 'closed',
      closeDeadline: closing.closeDeadline,
      refunded: '1300000',
      debt: '0',
    });
  });

  it('error: channel arguments and documents name what is wrong', async () => {
    expect(await fails('channel show 0x1234', 2)).toMatch(
      /invalid argument 1 "0x1234": expected 0x and 64 hex digits/,
    );
    expect(await fails('channel deal --buyer 1 --key chan-buyer', 2)).toMatch(/invalid --seller/);
    const bad = join(dir, 'bad-deal.json');
    writeFileSync(bad, JSON.stringify({ deal: { buyerCell: '1' } }));
    expect(await fails(`channel open ${bad} --key chan-relayer`, 2)).toMatch(
      /open: .*bad-deal\.json: deal\.sellerCell: /,
    );
    expect(await fails(`channel deal ${bad} --price 1 --key chan-buyer`, 2)).toMatch(
      /either new terms or a FILE to co-sign, not both/,
    );
    expect(await fails('channel', 2)).toMatch(/say what to do: deal, open, voucher/);
  });
});

describe('gridcell deploy', () => {
  it('deploys to a chain by RPC URL and writes a manifest others can use', async () => {
    await fundedKey('deployer');
    const target = join(dir, 'deployed.json');
    const r = await gridcell(
      `deploy --rpc ${kit.rpcUrl} --key deployer --devnet-token --interval-seconds 300 --manifest ${target} --keystore ${keystore}`,
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/deployed ClearingPool at 0x/);
    expect(r.out).toMatch(
      /deployed DebtChannels at 0x.*\n.*authorised the pool.*\n.*authorised the channels/,
    );
    const written = JSON.parse(readFileSync(target, 'utf8'));
    expect(written.channels).toEqual({ challengeWindow: '14400', withdrawalDelay: '18000' });
    expect(written.contracts.channels).toMatch(/^0x[0-9a-fA-F]{40}$/);
    const shown = await gridcell(`market interval 1 --manifest ${target}`);
    expect(shown.code, shown.err).toBe(0);
  });

  it('error: deploy needs a token or --devnet-token, and a reachable node', async () => {
    expect(await fails(`deploy --rpc ${kit.rpcUrl} --key deployer --keystore ${keystore}`, 2)).toMatch(
      /pass --token ADDRESS, or --devnet-token/,
    );
    expect(
      await fails(
        `deploy --rpc ${kit.rpcUrl} --key deployer --devnet-token --challenge-window 600 --withdrawal-delay 600 --keystore ${keystore}`,
        2,
      ),
    ).toMatch(
      /invalid --withdrawal-delay "600": expected a withdrawal delay longer than the challenge window/,
    );
    expect(
      await fails(`deploy --rpc http://127.0.0.1:1 --key deployer --devnet-token --keystore ${keystore}`),
    ).toMatch(/cannot reach the node at http:\/\/127\.0\.0\.1:1/);
  });
});
