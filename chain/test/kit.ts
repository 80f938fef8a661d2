/**
 * Helpers for vitest files that run against the shared anvil of the global setup: fresh
 * funded accounts, cells with their own agent and meter keys, and the chain clock.
 */
import {
  type Abi,
  type Address,
  type ContractFunctionArgs,
  type ContractFunctionName,
  createTestClient,
  http,
  type LocalAccount,
  parseEther,
  parseEventLogs,
  type TransactionReceipt,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { inject } from 'vitest';
import { cellRegistryAbi, cellWalletsAbi, devnetTokenAbi } from '../abi/contracts.generated.js';
import { createGridcellClients, type GridcellClients } from '../client/index.js';
import { type Manifest, readManifest } from '../manifest/index.js';
import type { CellType } from '../units/index.js';

export interface Kit extends GridcellClients {
  manifest: Manifest;
  /** The devnet manifest file of the global setup. */
  manifestPath: string;
  rpcUrl: string;
  /** A fresh account with 100 ETH for gas. */
  freshAccount(): Promise<LocalAccount>;
  /** Connects a cell owned by a fresh account, funds its wallet and lifts the agent's cap. */
  newCell(cellType: CellType, funds?: bigint): Promise<TestCell>;
  /** Mints devnet tokens to `to` (base units), paid for by a fresh account. */
  faucet(to: Address, amount: bigint): Promise<void>;
  /** Sends a contract call from `account` and waits for it; throws if it reverted. */
  write<const abi extends Abi, name extends ContractFunctionName<abi, 'nonpayable' | 'payable'>>(
    account: LocalAccount,
    request: {
      address: Address;
      abi: abi;
      functionName: name;
      args: ContractFunctionArgs<abi, 'nonpayable' | 'payable', name>;
    },
  ): Promise<TransactionReceipt>;
  /** Mines a block at `timestamp` (Unix seconds); later blocks follow from there. */
  setChainTime(timestamp: bigint): Promise<void>;
  chainTime(): Promise<bigint>;
}

export interface TestCell {
  id: bigint;
  owner: LocalAccount;
  agent: LocalAccount;
  meter: LocalAccount;
}

export function useKit(): Kit {
  const manifestPath = inject('manifestPath');
  const manifest = readManifest(manifestPath);
  const rpcUrl = inject('rpcUrl');
  const clients = createGridcellClients({ manifest, pollingIntervalMs: 20 });
  const testClient = createTestClient({ chain: clients.chain, mode: 'anvil', transport: http(rpcUrl) });
  const { publicClient } = clients;

  async function freshAccount(): Promise<LocalAccount> {
    const account = privateKeyToAccount(generatePrivateKey());
    await testClient.setBalance({ address: account.address, value: parseEther('100') });
    return account;
  }

  async function write(
    account: LocalAccount,
    request: { address: Address; abi: Abi; functionName: string; args: readonly unknown[] },
  ): Promise<TransactionReceipt> {
    const { walletClient } = createGridcellClients({ manifest, account, pollingIntervalMs: 20 });
    if (!walletClient) throw new Error('no wallet client');
    // biome-ignore lint/suspicious/noExplicitAny: a generic helper over every generated ABI
    const hash = await walletClient.writeContract(request as any);
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== 'success') throw new Error(`${request.functionName} failed`);
    return receipt;
  }

  async function newCell(cellType: CellType, funds = 10_000_000_000n): Promise<TestCell> {
    const owner = await freshAccount();
    const agent = privateKeyToAccount(generatePrivateKey());
    const meter = privateKeyToAccount(generatePrivateKey());
    const { contracts } = manifest;
    // The id from the receipt, not from cellCount: cells made in parallel get their own.
    const connected = await write(owner, {
      address: contracts.registry,
      abi: cellRegistryAbi,
      functionName: 'connect',
      args: [owner.address, cellType, 0n, 100_000, 100_000, agent.address, [meter.address]],
    });
    const [event] = parseEventLogs({
      abi: cellRegistryAbi,
      eventName: 'CellConnected',
      logs: connected.logs,
    });
    if (!event) throw new Error('connect emitted no CellConnected');
    const cellId = event.args.cellId;
    if (funds > 0n) {
      await write(owner, {
        address: contracts.token,
        abi: devnetTokenAbi,
        functionName: 'faucet',
        args: [owner.address, funds],
      });
      await write(owner, {
        address: contracts.token,
        abi: devnetTokenAbi,
        functionName: 'approve',
        args: [contracts.wallets, funds],
      });
      await write(owner, {
        address: contracts.wallets,
        abi: cellWalletsAbi,
        functionName: 'deposit',
        args: [cellId, funds],
      });
      await write(owner, {
        address: contracts.wallets,
        abi: cellWalletsAbi,
        functionName: 'setDailyCap',
        args: [cellId, 2n ** 96n - 1n],
      });
    }
    return { id: cellId, owner, agent, meter };
  }

  async function faucet(to: Address, amount: bigint): Promise<void> {
    await write(await freshAccount(), {
      address: manifest.contracts.token,
      abi: devnetTokenAbi,
      functionName: 'faucet',
      args: [to, amount],
    });
  }

  async function setChainTime(timestamp: bigint): Promise<void> {
    await testClient.setNextBlockTimestamp({ timestamp });
    await testClient.mine({ blocks: 1 });
  }

  async function chainTime(): Promise<bigint> {
    return (await publicClient.getBlock()).timestamp;
  }

  return {
    ...clients,
    manifest,
    manifestPath,
    rpcUrl,
    freshAccount,
    newCell,
    faucet,
    write: write as Kit['write'],
    setChainTime,
    chainTime,
  };
}
