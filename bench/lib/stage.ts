// What the bench is doing now, so that a run killed from outside (a CI timeout) says where it stood.
let current = 'starting';

export function stage(what: string): void {
  current = what;
}

export function currentStage(): string {
  return current;
}
