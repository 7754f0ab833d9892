// cluster-key-slot (ioredis' own dependency) ships no types: the hash slot of a key, honouring {hash tags}.
declare module 'cluster-key-slot' {
  function calculateSlot(key: string | Buffer): number;
  export default calculateSlot;
}
