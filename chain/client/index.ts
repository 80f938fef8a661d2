/**
 * viem clients for a gridcell deployment, built from its manifest.
 */
import {
  type Account,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem';
import type { Manifest } from '../manifest/index.js';
import { gridcellDomain } from '../typed-data/index.js';

export interface GridcellClients {
  chain: Chain;
  publicClient: PublicClient<Transport, Chain>;
  /** Present when an account was given. */
  walletClient: WalletClient<Transport, Chain, Account> | undefined;
  /** The EIP-712 domain of the clearing pool (orders and readings). */
  poolDomain: ReturnType<typeof gridcellDomain>;
  /** The EIP-712 domain of the debt channels (deals, vouchers, closes and their readings). */
  channelsDomain: ReturnType<typeof gridcellDomain>;
}

export interface CreateGridcellClientsParameters {
  manifest: Manifest;
  /** Overrides the manifest's RPC URL. */
  rpcUrl?: string;
  account?: Account;
  pollingIntervalMs?: number;
}

/** Builds clients for the deployment a manifest describes. */
export function createGridcellClients(parameters: CreateGridcellClientsParameters): GridcellClients {
  const { manifest } = parameters;
  const rpcUrl = parameters.rpcUrl ?? manifest.rpcUrl;
  if (!rpcUrl) throw new Error('no RPC URL: the manifest has none, pass --rpc URL');
  const chain = defineChain({
    id: manifest.chainId,
    name: `gridcell chain ${manifest.chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  const transport = http(rpcUrl);
  const pollingInterval = parameters.pollingIntervalMs ?? 100;
  const publicClient = createPublicClient({ chain, transport, pollingInterval });
  const walletClient = parameters.account
    ? createWalletClient({ chain, transport, account: parameters.account, pollingInterval })
    : undefined;
  return {
    chain,
    publicClient,
    walletClient,
    poolDomain: gridcellDomain(manifest.chainId, manifest.contracts.pool),
    channelsDomain: gridcellDomain(manifest.chainId, manifest.contracts.channels),
  };
}
