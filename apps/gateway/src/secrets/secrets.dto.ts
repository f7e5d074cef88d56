import { ApiProperty } from '@nestjs/swagger';
import { IsNotEmpty, IsString, MaxLength } from 'class-validator';

/** Larger values are refused: a secret is a token or a key, not a file. */
export const MAX_SECRET_BYTES = 64 * 1024;

export class SecretValueDto {
  @ApiProperty({ description: 'the value; stored encrypted, never returned by any endpoint' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_SECRET_BYTES)
  value!: string;
}
