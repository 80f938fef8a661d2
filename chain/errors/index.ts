/**
 * Errors as people read them. One BaseError (after viem's): a short message, details, the
 * cause, and a literal name. Contract reverts are decoded into their custom error with named
 * arguments, e.g. `PoolGateClosed(interval=2000002, gateClosure=1800001500)`, never raw hex.
 */
import type { AbiError } from 'abitype';
import {
  type Abi,
  ContractFunctionRevertedError,
  decodeErrorResult,
  type Hex,
  BaseError as ViemBaseError,
} from 'viem';
import {
  cellRegistryAbi,
  cellWalletsAbi,
  clearingPoolAbi,
  debtChannelsAbi,
  devnetTokenAbi,
} from '../abi/contracts.generated.js';

export interface BaseErrorFields {
  details?: string;
  cause?: unknown;
}

/** The root of gridcell's errors. */
export class BaseError extends Error {
  override name = 'GridcellError';
  readonly shortMessage: string;
  readonly details: string | undefined;

  constructor(shortMessage: string, fields: BaseErrorFields = {}) {
    super(fields.details ? `${shortMessage}\n${fields.details}` : shortMessage, { cause: fields.cause });
    this.shortMessage = shortMessage;
    this.details = fields.details;
  }
}

/** The first line of an error's message: the short reason, for logs and answers. */
export function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}

/** A contract call reverted; `errorName` and `args` are the decoded custom error. */
export class ContractRevertError extends BaseError {
  override name = 'ContractRevertError' as const;
  readonly errorName: string;
  readonly args: Record<string, unknown>;
  readonly functionName: string;

  constructor(fields: {
    functionName: string;
    errorName: string;
    args: Record<string, unknown>;
    cause?: unknown;
  }) {
    super(`${fields.functionName} reverted: ${formatCustomError(fields.errorName, fields.args)}`, {
      cause: fields.cause,
    });
    this.functionName = fields.functionName;
    this.errorName = fields.errorName;
    this.args = fields.args;
  }
}

/** Every error any gridcell contract can raise, including those bubbling from another. */
export const allErrorsAbi: readonly AbiError[] = (() => {
  const seen = new Map<string, AbiError>();
  for (const abi of [
    clearingPoolAbi,
    debtChannelsAbi,
    cellWalletsAbi,
    cellRegistryAbi,
    devnetTokenAbi,
  ] as readonly Abi[]) {
    for (const item of abi) {
      if (item.type !== 'error') continue;
      const key = `${item.name}(${item.inputs.map((i) => i.type).join(',')})`;
      if (!seen.has(key)) seen.set(key, item);
    }
  }
  return [...seen.values()];
})();

function formatValue(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return `[${value.map(formatValue).join(', ')}]`;
  return String(value);
}

/** `Name(a=1, b=0xabc)`. */
export function formatCustomError(errorName: string, args: Record<string, unknown>): string {
  const parts = Object.entries(args).map(([k, v]) => `${k}=${formatValue(v)}`);
  return `${errorName}(${parts.join(', ')})`;
}

/**
 * Decodes revert data against every gridcell error.
 * @returns The error's name and its arguments by parameter name, or undefined when the
 * data matches no known error.
 */
export function decodeRevertData(
  data: Hex,
): { errorName: string; args: Record<string, unknown> } | undefined {
  try {
    const decoded = decodeErrorResult({ abi: allErrorsAbi, data });
    const item = allErrorsAbi.find((e) => e.name === decoded.errorName);
    const args: Record<string, unknown> = {};
    const values = (decoded.args ?? []) as readonly unknown[];
    item?.inputs.forEach((input, i) => {
      args[input.name ?? `arg${i}`] = values[i];
    });
    return { errorName: decoded.errorName, args };
  } catch {
    return undefined;
  }
}

/**
 * Turns an error thrown by a viem contract call into a ContractRevertError when it is a
 * revert of a known custom error; returns other errors unchanged.
 */
export function decodeContractError(error: unknown, functionName: string): unknown {
  if (!(error instanceof ViemBaseError)) return error;
  const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
  if (!(reverted instanceof ContractFunctionRevertedError)) return error;
  if (reverted.data?.errorName) {
    const item = reverted.data.abiItem as AbiError;
    const values = (reverted.data.args ?? []) as readonly unknown[];
    const args: Record<string, unknown> = {};
    item.inputs.forEach((input, i) => {
      args[input.name ?? `arg${i}`] = values[i];
    });
    return new ContractRevertError({ functionName, errorName: reverted.data.errorName, args, cause: error });
  }
  if (reverted.raw) {
    const decoded = decodeRevertData(reverted.raw);
    if (decoded) return new ContractRevertError({ functionName, ...decoded, cause: error });
  }
  return error;
}
