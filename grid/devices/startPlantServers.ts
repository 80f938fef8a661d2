/**
 * Puts every device of a plant on Modbus TCP: one server per device, on consecutive ports
 * from `basePort`, in the order of `plant.devices()` (router; per cell hub, port, meter; links).
 * The router and the energy ports also carry vendor model 64900 (shed load and curtailed PV).
 */
import type { Plant, PlantDevice } from '../plant/index.js';
import { balanceBlock, commonBlock, derBlocks, plantMeterBlock } from './plantDeviceBlocks.js';
import { type SunSpecDeviceServer, startSunSpecDeviceServer } from './sunspecDeviceServer.js';

/** Where a device answers. */
export interface DeviceAddress extends PlantDevice {
  host: string;
  port: number;
  unitId: number;
}

export interface PlantServers {
  devices: DeviceAddress[];
  /** The address of device `id` (e.g. `hub:prosumer-1`). */
  address(id: string): DeviceAddress;
  close(): Promise<void>;
}

export interface StartPlantServersParameters {
  plant: Plant;
  host?: string;
  /** The first port; devices take consecutive ports (explicit: ServerTCP given 0 listens on 502). */
  basePort: number;
  unitId?: number;
}

const MODEL_NAMES: Record<PlantDevice['kind'], string> = {
  router: 'energy router',
  hub: 'energy hub',
  port: 'energy port',
  link: 'rectiverter',
  meter: 'meter',
};

/**
 * Starts the plant's Modbus servers. Every request first advances the plant to its clock's
 * time (when it has one), so reads see the physics now and writes take effect now.
 * @example
 * const servers = await startPlantServers({ plant, basePort: 16100 });
 * servers.address('router'); // { host: '127.0.0.1', port: 16100, unitId: 1, ... }
 */
export async function startPlantServers(parameters: StartPlantServersParameters): Promise<PlantServers> {
  const { plant } = parameters;
  const host = parameters.host ?? '127.0.0.1';
  const unitId = parameters.unitId ?? 1;
  const before = plant.clocked ? () => plant.sync() : undefined;
  const servers: SunSpecDeviceServer[] = [];
  const devices: DeviceAddress[] = [];
  try {
    for (const [i, device] of plant.devices().entries()) {
      const port = parameters.basePort + i;
      const blocks = [
        commonBlock(MODEL_NAMES[device.kind], device.id, unitId),
        ...(device.kind === 'meter' ? [plantMeterBlock(plant, device.cell ?? '')] : derBlocks(plant, device)),
        // The router (complex) and each energy port (its cell) report unserved energy.
        ...(device.kind === 'router' || device.kind === 'port' ? [balanceBlock(plant, device)] : []),
      ];
      servers.push(
        await startSunSpecDeviceServer({ host, port, unitId, blocks, ...(before ? { before } : {}) }),
      );
      devices.push({ ...device, host, port, unitId });
    }
  } catch (error) {
    await Promise.all(servers.map((s) => s.close()));
    throw error;
  }
  return {
    devices,
    address(id) {
      const found = devices.find((d) => d.id === id);
      if (!found) throw new Error(`no device ${id}; devices: ${devices.map((d) => d.id).join(', ')}`);
      return found;
    },
    close: async () => {
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}
