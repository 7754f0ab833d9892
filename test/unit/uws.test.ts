import { describe, expect, it } from 'vitest';
import { isNative, loadUws, resolveUws, UwsLoadError } from '../../src/server/uws.js';

// glibc of this machine: the upstream build needs >= 2.38.
const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime ?? '0.0';
const [major, minor] = glibc.split('.').map(Number);
const upstreamLoads = major! > 2 || (major === 2 && minor! >= 38);

describe('uWS loader', () => {
  it('loads a native build, upstream first, and says which', () => {
    const { uws, info } = loadUws();
    expect(isNative(uws)).toBe(true);
    expect(info.build).toBe(upstreamLoads ? 'upstream' : 'compat');
    expect(info.version).toBe(upstreamLoads ? '20.57.0' : '20.30.0-unofficial.0');
    expect(info.binary).toMatch(/\.node$/);
  });

  it('refuses JS re-implementations', () => {
    expect(isNative({ App: function App() {} })).toBe(false);
    expect(isNative({ App: class {} })).toBe(false);
    expect(isNative({})).toBe(false);
    expect(isNative(null)).toBe(false);
  });

  it('the compat build is its native binary, never the package\'s pure-JS fallback', () => {
    const { uws, info } = resolveUws('compat');
    expect(info.build).toBe('compat');
    expect(info.binary).toMatch(/binaries\/uws_.*\.node$/);
    expect(Function.prototype.toString.call(uws.App)).toMatch(/\[native code\]/);
  });

  it(`forcing the upstream build ${upstreamLoads ? 'loads v20.57.0' : 'fails with the glibc reason'} (glibc ${glibc})`, () => {
    if (upstreamLoads) {
      expect(resolveUws('upstream').info.version).toBe('20.57.0');
    } else {
      expect(() => resolveUws('upstream')).toThrow(UwsLoadError);
      expect(() => resolveUws('upstream')).toThrow(/upstream \(uWebSockets\.js\): .*GLIBC/);
    }
  });

  it('rejects an unknown forced build', () => {
    expect(() => resolveUws('js')).toThrow(/WSGATE_UWS_BUILD="js"/);
  });
});
