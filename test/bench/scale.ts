export async function benchScale(): Promise<string[][]> {
  return [];
}
