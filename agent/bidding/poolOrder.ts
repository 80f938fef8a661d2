/**
 * One pool order of the agent's cell, as the bidder and the reserve responder place it: the
 * cell's position in the interval gives the next nonce (past the cancelled ones), the agent key
 * signs the order and it is submitted alone.
 */
import type { Address, Chain, Hex, LocalAccount, PublicClient, Transport } from 'viem';
import { clearingPoolAbi } from '../../chain/abi/contracts.generated.js';
import {
  type GridcellDomain,
  type Order,
  signOrder,
  toSignedOrderArg,
} from '../../chain/typed-data/index.js';
import type { TxSender } from '../sender/index.js';

/** ClearingPool.MAX_ORDERS_PER_CELL: nonces 0 to 15 in an interval. */
const MAX_ORDERS_PER_CELL = 16;

export interface PoolOrderParameters {
  publicClient: PublicClient<Transport, Chain>;
  pool: Address;
  account: LocalAccount;
  poolDomain: GridcellDomain;
  tx: TxSender;
}

/** The cell's position in `interval` and the first nonce neither used nor cancelled. */
export async function positionOf(parameters: PoolOrderParameters, interval: bigint, cell: bigint) {
  const position = await parameters.publicClient.readContract({
    address: parameters.pool,
    abi: clearingPoolAbi,
    functionName: 'positionOf',
    args: [interval, cell],
  });
  let nonce = position.orderCount;
  while (nonce < MAX_ORDERS_PER_CELL && (position.cancelMask & (1 << nonce)) !== 0) nonce++;
  return { position, nonce };
}

/** Signs `order` with the agent key and submits it; returns the transaction hash. */
export async function submitOrder(parameters: PoolOrderParameters, order: Order): Promise<Hex> {
  const signed = await signOrder(parameters.account, parameters.poolDomain, order);
  const receipt = await parameters.tx.send({
    address: parameters.pool,
    abi: clearingPoolAbi,
    functionName: 'submitOrders',
    args: [[toSignedOrderArg(signed)]],
  });
  return receipt.transactionHash;
}
