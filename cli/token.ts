import type { Address, Chain, PublicClient, Transport } from 'viem';
import { devnetTokenAbi } from '../chain/abi/contracts.generated.js';

export interface TokenInfo {
  address: Address;
  decimals: number;
  symbol: string;
}

/** The settlement token's decimals and symbol (any ERC-20 with the metadata extension). */
export async function tokenInfo(
  publicClient: PublicClient<Transport, Chain>,
  address: Address,
): Promise<TokenInfo> {
  const [decimals, symbol] = await Promise.all([
    publicClient.readContract({ address, abi: devnetTokenAbi, functionName: 'decimals' }),
    publicClient.readContract({ address, abi: devnetTokenAbi, functionName: 'symbol' }),
  ]);
  return { address, decimals, symbol };
}
