import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import { NAME_PATTERN, NAME_RULE } from '@conveyor/contracts';

export class DeadLettersQueryDto {
  @ApiPropertyOptional({ description: 'only the dead letters of this driver' })
  @IsOptional()
  @Matches(NAME_PATTERN, { message: `$property must be ${NAME_RULE}` })
  driver?: string;

  @ApiPropertyOptional({ default: 50, minimum: 1, maximum: 200 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;
}
