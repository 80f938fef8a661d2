/**
 * Bringing a power cell onto the chain as its owner would: connect the avatar (agent and meter
 * keys, connection limits), mint devnet tokens, deposit them into the cell's wallet, lift the
 * agent's daily cap, and give the agent key gas money.
 */
import { type LocalAccount, parseEther, parseEventLogs } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { createTxSender } from '../agent/sender/index.js';
import { cellRegistryAbi, cellWalletsAbi, devnetTokenAbi } from '../chain/abi/contracts.generated.js';
import { createGridcellClients, type GridcellClients } from '../chain/client/index.js';
import { BaseError } from '../chain/errors/index.js';
import type { Manifest } from '../chain/manifest/index.js';
import { CellType } from '../chain/units/index.js';

/** A cell of the demo with its three keys: owner (wallet), agent (trading) and meter (readings). */
export interface DemoCell {
  name: string;
  id: bigint;
  owner: LocalAccount;
  agent: LocalAccount;
  meter: LocalAccount;
  /** Deposited into the cell's wallet, token base units. */
  deposited: bigint;
}

export class CellSetupError extends BaseError {
  override name = 'CellSetupError' as const;
}

/**
 * Connects and funds one prosumer cell. `owner` pays the gas and must hold ETH; `funder`
 * (any account with ETH) gives the new agent key its gas money.
 */
export async function connectCell(parameters: {
  name: string;
  manifest: Manifest;
  clients: GridcellClients;
  owner: LocalAccount;
  funder: LocalAccount;
  maxImportW: number;
  maxExportW: number;
  deposit: bigint;
  agentGas?: bigint;
}): Promise<DemoCell> {
  const { manifest, owner, name } = parameters;
  const { contracts } = manifest;
  const { publicClient } = parameters.clients;
  const ownerClients = createGridcellClients({ manifest, rpcUrl: rpcOf(parameters.clients), account: owner });
  if (!ownerClients.walletClient) throw new CellSetupError('no wallet client for the owner');
  const tx = createTxSender({ publicClient, walletClient: ownerClients.walletClient });
  const agent = privateKeyToAccount(generatePrivateKey());
  const meter = privateKeyToAccount(generatePrivateKey());
  try {
    const connected = await tx.send({
      address: contracts.registry,
      abi: cellRegistryAbi,
      functionName: 'connect',
      args: [
        owner.address,
        CellType.Prosumer,
        0n,
        parameters.maxImportW,
        parameters.maxExportW,
        agent.address,
        [meter.address],
      ],
    });
    const [event] = parseEventLogs({
      abi: cellRegistryAbi,
      eventName: 'CellConnected',
      logs: connected.logs,
    });
    if (!event) throw new CellSetupError(`connect for ${name} emitted no CellConnected`);
    const id = event.args.cellId;
    const deposit = parameters.deposit;
    await tx.send({
      address: contracts.token,
      abi: devnetTokenAbi,
      functionName: 'faucet',
      args: [owner.address, deposit],
    });
    await tx.send({
      address: contracts.token,
      abi: devnetTokenAbi,
      functionName: 'approve',
      args: [contracts.wallets, deposit],
    });
    await tx.send({
      address: contracts.wallets,
      abi: cellWalletsAbi,
      functionName: 'deposit',
      args: [id, deposit],
    });
    await tx.send({
      address: contracts.wallets,
      abi: cellWalletsAbi,
      functionName: 'setDailyCap',
      args: [id, 2n ** 96n - 1n],
    });
    await sendEth(
      parameters.clients,
      manifest,
      parameters.funder,
      agent.address,
      parameters.agentGas ?? parseEther('10'),
    );
    return { name, id, owner, agent, meter, deposited: deposit };
  } catch (cause) {
    throw new CellSetupError(`cannot connect and fund cell ${name}`, {
      details: `owner ${owner.address}; the owner needs ETH for gas and the token must be the devnet token (its faucet)`,
      cause,
    });
  }
}

/** Sends ETH from `from` to `to` and waits for it (works on any chain where `from` has ETH). */
export async function sendEth(
  clients: GridcellClients,
  manifest: Manifest,
  from: LocalAccount,
  to: `0x${string}`,
  value: bigint,
): Promise<void> {
  const { walletClient } = createGridcellClients({ manifest, rpcUrl: rpcOf(clients), account: from });
  if (!walletClient) throw new CellSetupError('no wallet client for the funder');
  const hash = await walletClient.sendTransaction({ to, value });
  const receipt = await clients.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') throw new CellSetupError(`sending ETH to ${to} failed in ${hash}`);
}

function rpcOf(clients: GridcellClients): string {
  const url = clients.chain.rpcUrls.default.http[0];
  if (!url) throw new CellSetupError('the clients have no RPC URL');
  return url;
}
