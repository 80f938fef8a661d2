/**
 * The binding of a libp2p identity to an on-chain key. The agent key of a cell (or the key of
 * a service application) signs, EIP-712 under the domain {name "gridcell", version "1",
 * chainId, verifyingContract = the CellRegistry}:
 *
 *   AgentBinding(uint256 cell, address service, string peerId, uint64 expiry)
 *
 * (`cell` = 0 for a service, `service` = 0x0 for a cell). A peer accepts a message only when
 * the gossipsub sender (StrictSign) is `peerId`, the binding has not expired and the signer is
 * CellRegistry.agentOf(cell) (or `service`). No contract verifies this type, so it lives here
 * rather than in chain/typed-data; docs/agent.md documents it.
 */
import {
  type Address,
  compactSignatureToSignature,
  type LocalAccount,
  parseSignature,
  recoverTypedDataAddress,
  serializeSignature,
  signatureToCompactSignature,
  zeroAddress,
} from 'viem';
import { type CompactSignature, gridcellDomain } from '../../chain/typed-data/index.js';
import type { Sender } from '../messages/index.js';

export const agentBindingTypes = {
  AgentBinding: [
    { name: 'cell', type: 'uint256' },
    { name: 'service', type: 'address' },
    { name: 'peerId', type: 'string' },
    { name: 'expiry', type: 'uint64' },
  ],
} as const;

/** A binding as it travels in every envelope. */
export interface AgentBinding {
  peerId: string;
  /** Unix seconds. */
  expiry: number;
  signature: CompactSignature;
}

function message(sender: Sender, peerId: string, expiry: number) {
  return {
    cell: 'cell' in sender ? sender.cell : 0n,
    service: 'service' in sender ? sender.service : zeroAddress,
    peerId,
    expiry: BigInt(expiry),
  };
}

/**
 * Signs the binding of `peerId` to `sender` with the sender's key (the cell's agent key).
 * @example const binding = await signAgentBinding(agentKey, chainId, registry, { cell: 7n }, peerId, expiry);
 */
export async function signAgentBinding(
  account: LocalAccount,
  chainId: number,
  registry: Address,
  sender: Sender,
  peerId: string,
  expiry: number,
): Promise<AgentBinding> {
  const signature = await account.signTypedData({
    domain: gridcellDomain(chainId, registry),
    types: agentBindingTypes,
    primaryType: 'AgentBinding',
    message: message(sender, peerId, expiry),
  });
  const { r, yParityAndS } = signatureToCompactSignature(parseSignature(signature));
  return { peerId, expiry, signature: { r, vs: yParityAndS } };
}

/** The key that signed a binding (compare it with agentOf(cell), or with the service address). */
export function recoverAgentBindingSigner(
  chainId: number,
  registry: Address,
  sender: Sender,
  binding: AgentBinding,
): Promise<Address> {
  return recoverTypedDataAddress({
    domain: gridcellDomain(chainId, registry),
    types: agentBindingTypes,
    primaryType: 'AgentBinding',
    message: message(sender, binding.peerId, binding.expiry),
    signature: serializeSignature(
      compactSignatureToSignature({ r: binding.signature.r, yParityAndS: binding.signature.vs }),
    ),
  });
}
