/**
 * Sends the agent's transactions one at a time (one key, one nonce sequence): simulate first,
 * so a revert comes back decoded (`ChannelMeterBooked(meter=…, bookedThrough=…)`), then send
 * and wait for the receipt.
 */
import type {
  Abi,
  Account,
  Chain,
  ContractFunctionArgs,
  ContractFunctionName,
  Hex,
  PublicClient,
  TransactionReceipt,
  Transport,
  WalletClient,
} from 'viem';
import { BaseError, decodeContractError } from '../../chain/errors/index.js';

export interface TxSender {
  send<const abi extends Abi, name extends ContractFunctionName<abi, 'nonpayable' | 'payable'>>(request: {
    address: Hex;
    abi: abi;
    functionName: name;
    args: ContractFunctionArgs<abi, 'nonpayable' | 'payable', name>;
  }): Promise<TransactionReceipt>;
  /** Transactions sent so far. */
  sent(): number;
}

export class TransactionFailedError extends BaseError {
  override name = 'TransactionFailedError' as const;
}

/** Creates a sender over a wallet client that holds the agent key. */
export function createTxSender(parameters: {
  publicClient: PublicClient<Transport, Chain>;
  walletClient: WalletClient<Transport, Chain, Account>;
}): TxSender {
  const { publicClient, walletClient } = parameters;
  let queue: Promise<unknown> = Promise.resolve();
  let count = 0;
  return {
    send(request) {
      const run = async () => {
        try {
          // viem's generic types cannot follow the request through this helper, hence the casts.
          const { request: prepared } = await (
            publicClient.simulateContract as (r: unknown) => Promise<{ request: unknown }>
          )({
            ...request,
            account: walletClient.account,
          });
          const hash = await (walletClient.writeContract as (r: unknown) => Promise<Hex>)(prepared);
          const receipt = await publicClient.waitForTransactionReceipt({ hash });
          if (receipt.status !== 'success')
            throw new TransactionFailedError(`${request.functionName} reverted in transaction ${hash}`);
          count++;
          return receipt;
        } catch (error) {
          throw decodeContractError(error, request.functionName);
        }
      };
      const result = queue.then(run, run);
      queue = result.catch(() => undefined);
      return result;
    },
    sent: () => count,
  };
}
