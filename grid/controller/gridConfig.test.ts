import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TOPOLOGY_PATH, loadTopology, TopologyError } from '../topology/index.js';
import { GridConfigError, readGridConfig } from './gridConfig.js';

const dir = mkdtempSync(join(tmpdir(), 'gridcell-grid-'));
const file = (name: string, value: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
};

describe('the grid config and the topology files', () => {
  it('reads a config with defaults, paths relative to the config file', () => {
    const config = readGridConfig(
      file('ok.json', { devices: { basePort: 16500 }, manifest: 'deployment.json' }),
    );
    expect(config).toMatchObject({
      topologyPath: DEFAULT_TOPOLOGY_PATH,
      manifest: join(dir, 'deployment.json'),
      devices: { host: '127.0.0.1', basePort: 16500, unitId: 1, overrides: {} },
      confirmations: 2,
      revertSeconds: 60,
      clock: 'chain',
      islanded: false,
      writeLeadSeconds: 5,
      shortfallToleranceWh: 10,
      shortfallTolerancePct: 2,
    });
  });

  it('error: a refresh period at or beyond the revert time is refused, naming the field', () => {
    expect(() =>
      readGridConfig(
        file('slow.json', { devices: { basePort: 16500 }, revertSeconds: 30, refreshSeconds: 30 }),
      ),
    ).toThrow(/refreshSeconds: refreshSeconds must be below revertSeconds/);
    expect(() => readGridConfig(file('broken.json', '{'))).toThrow(GridConfigError);
  });

  it('the default topology is the four-prosumer complex: three loads each, a DC link between every pair', () => {
    const topology = loadTopology();
    expect(topology.cells).toHaveLength(4);
    expect(topology.cells.every((c) => c.loads.length === 3)).toBe(true);
    expect(topology.dcMesh.links).toHaveLength(6);
  });

  it('error: a topology whose link names an unknown cell is refused with the path of the field', () => {
    const bad = structuredClone(loadTopology()) as unknown as { dcMesh: { links: { b: string }[] } };
    const link = bad.dcMesh.links[0];
    if (link) link.b = 'prosumer-9';
    expect(() => loadTopology(file('topology.json', bad))).toThrow(TopologyError);
    expect(() => loadTopology(file('topology.json', bad))).toThrow(
      /dcMesh\.links\.0\.b: unknown cell prosumer-9/,
    );
  });
});
