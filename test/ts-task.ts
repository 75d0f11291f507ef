/**
 * A TypeScript task module using syntax that type stripping alone cannot run (enum, parameter
 * properties): workers must load it through tsx.
 */
import { task } from 'weft';

enum Shape {
  Square = 'square',
  Circle = 'circle',
}

class Area {
  constructor(private readonly shape: Shape) {}
  of(size: number): number {
    return this.shape === Shape.Square ? size * size : Math.round(Math.PI * size * size);
  }
}

export const area = task(function area(shape: 'square' | 'circle', size: number): string {
  return `${shape}:${new Area(shape as Shape).of(size)}`;
});
