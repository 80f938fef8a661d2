/**
 * What the wallet commands share: the deployment (manifest and RPC), the signing key from the
 * keystore, sending a transaction with its revert decoded, and output as text or JSON.
 */
import type {
  Abi,
  Account,
  ContractFunctionArgs,
  ContractFunctionName,
  Hex,
  LocalAccount,
  TransactionReceipt,
} from 'viem';
import { HttpRequestError, TimeoutError } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { createGridcellClients, type GridcellClients } from '../chain/client/index.js';
import { BaseError, decodeContractError } from '../chain/errors/index.js';
import { DEFAULT_KEYSTORE_DIR, openKeystore } from '../chain/keystore/index.js';
import { createLogger, type Logger, type LogLevel, parseLogLevel } from '../chain/logger/index.js';
import { DEFAULT_MANIFEST_PATH, type Manifest, readManifest } from '../chain/manifest/index.js';
import { type Io, json } from './io.js';

/** Options every wallet command takes. */
export const connectionOptions = {
  manifest: { type: 'string' },
  rpc: { type: 'string' },
  keystore: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const connectionHelp = `Common options:
  --manifest FILE   deployment manifest (default ${DEFAULT_MANIFEST_PATH})
  --rpc URL         node to use instead of the manifest's
  --keystore DIR    key files (default ${DEFAULT_KEYSTORE_DIR})
  --key NAME        the key that signs (password from GRIDCELL_PASSWORD or a prompt)
  --json            print one JSON object instead of text
  -h, --help        show this help
`;

export class NodeUnreachableError extends BaseError {
  override name = 'NodeUnreachableError' as const;
}

export class PasswordError extends BaseError {
  override name = 'PasswordError' as const;
}

export interface ConnectionValues {
  manifest?: string | undefined;
  rpc?: string | undefined;
  keystore?: string | undefined;
  key?: string | undefined;
  json?: boolean | undefined;
}

export interface Context extends GridcellClients {
  manifest: Manifest;
  rpcUrl: string;
  io: Io;
  asJson: boolean;
  /** The signing account; throws a clear error when --key was not given. */
  signer(): Promise<LocalAccount>;
  /** Simulates, sends and waits for a contract call; reverts come back decoded. */
  send<const abi extends Abi, name extends ContractFunctionName<abi, 'nonpayable' | 'payable'>>(request: {
    address: Hex;
    abi: abi;
    functionName: name;
    args: ContractFunctionArgs<abi, 'nonpayable' | 'payable', name>;
  }): Promise<TransactionReceipt>;
  /** Prints `text` in text mode, or `value` as JSON in --json mode. */
  print(text: string, value: unknown): void;
}

/** Reads the password of a key: GRIDCELL_PASSWORD, else a prompt on the terminal. */
export async function passwordFor(io: Io, what: string): Promise<string> {
  const fromEnv = io.env.GRIDCELL_PASSWORD;
  if (fromEnv !== undefined) return fromEnv;
  if (!io.askSecret) {
    throw new PasswordError(`a password is needed for ${what}`, {
      details: 'set GRIDCELL_PASSWORD, or run the command in a terminal to be asked',
    });
  }
  return io.askSecret(`password for ${what}: `);
}

/** Decrypts key `name` of the keystore in `dir`; a missing key fails before the password is asked. */
export async function unlockKey(io: Io, dir: string, name: string): Promise<LocalAccount> {
  const keystore = openKeystore(dir);
  keystore.address(name);
  return privateKeyToAccount(await keystore.privateKey(name, await passwordFor(io, `key "${name}"`)));
}

/** Turns a network failure into one line naming the URL. */
export function explainNetworkError(error: unknown, rpcUrl: string): unknown {
  if (error instanceof HttpRequestError || error instanceof TimeoutError) {
    return new NodeUnreachableError(`cannot reach the node at ${rpcUrl}`, {
      details: 'is it running? (`gridcell devnet` starts one)',
      cause: error,
    });
  }
  return error;
}

/**
 * The deployment a command works on: the manifest at `manifestPath` (default
 * ${DEFAULT_MANIFEST_PATH}) and the node at `rpcUrl`, else the manifest's.
 * @throws BaseError when neither names a node.
 */
export function openDeployment(
  manifestPath: string | undefined,
  rpcUrl: string | undefined,
): { manifest: Manifest; rpcUrl: string } {
  const manifest = readManifest(manifestPath ?? DEFAULT_MANIFEST_PATH);
  const url = rpcUrl ?? manifest.rpcUrl;
  if (!url) throw new BaseError('no RPC URL: the manifest has none; pass --rpc URL');
  return { manifest, rpcUrl: url };
}

/** A daemon's logger: lines on stderr, the level from GRIDCELL_LOG_LEVEL (checked) or `fallback`. */
export function daemonLogger(io: Io, name: string, fallback: LogLevel = 'info'): Logger {
  return createLogger({
    name,
    level: parseLogLevel(io.env.GRIDCELL_LOG_LEVEL, fallback),
    write: (line) => io.err(`${line}\n`),
  });
}

/** Builds the context of a wallet command from its options. */
export async function connect(values: ConnectionValues, io: Io): Promise<Context> {
  const { manifest, rpcUrl } = openDeployment(values.manifest, values.rpc);
  const clients = createGridcellClients({ manifest, rpcUrl, pollingIntervalMs: 50 });
  try {
    const chainId = await clients.publicClient.getChainId();
    if (chainId !== manifest.chainId) {
      throw new BaseError(
        `the node at ${rpcUrl} serves chain ${chainId}, the manifest is for chain ${manifest.chainId}`,
      );
    }
  } catch (error) {
    throw explainNetworkError(error, rpcUrl);
  }
  let account: LocalAccount | undefined;

  async function signer(): Promise<LocalAccount> {
    if (account) return account;
    if (!values.key) throw new BaseError('this command signs: pass --key NAME (see `gridcell keys list`)');
    account = await unlockKey(io, values.keystore ?? DEFAULT_KEYSTORE_DIR, values.key);
    return account;
  }

  const context: Context = {
    ...clients,
    manifest,
    rpcUrl,
    io,
    asJson: values.json ?? false,
    signer,
    async send(request) {
      const from = await signer();
      const { walletClient: client } = createGridcellClients({
        manifest,
        rpcUrl,
        account: from,
        pollingIntervalMs: 50,
      });
      if (!client) throw new Error('no wallet client');
      const walletClient = client;
      try {
        // The caller's signature checks the request against its ABI; viem's generic types
        // cannot follow it through this helper, hence the cast.
        const simulate = clients.publicClient.simulateContract as (
          args: typeof request & { account: Account },
        ) => Promise<{ request: Parameters<typeof walletClient.writeContract>[0] }>;
        const { request: prepared } = await simulate({ ...request, account: from });
        const hash = await walletClient.writeContract(prepared);
        return await clients.publicClient.waitForTransactionReceipt({ hash });
      } catch (error) {
        throw explainNetworkError(decodeContractError(error, String(request.functionName)), rpcUrl);
      }
    },
    print(text, value) {
      io.out(context.asJson ? json(value) : text.endsWith('\n') ? text : `${text}\n`);
    },
  };
  return context;
}
