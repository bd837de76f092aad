#!/bin/sh
# A client whose first attempt of simulation 0 hangs past its Slurm time
# limit (to test TIMEOUT handling); every other run is the heat solver.
if [ "$MELISSA_SIM_ID" = 0 ] && [ "$MELISSA_ATTEMPT" = 1 ]; then
  sleep 600
fi
exec "$MELISSA_TEST_HEAT" "$@"
