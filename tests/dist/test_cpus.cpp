// The CPU threads of one process of a data-parallel run (dist::cpus_per_process): the CPUs the launcher
// bound it to (srun's --cpus-per-task, mpirun's --bind-to), at most the machine's shared among its processes.
#include <sched.h>

#include <thread>

#include "core/dist/communicator.h"
#include "tests/helpers.h"

using namespace mpncov;

TEST_SUITE("unit") {

TEST_CASE("dist: a process's threads are the CPUs it is bound to, at most the machine's share") {
  cpu_set_t all;
  REQUIRE(sched_getaffinity(0, sizeof all, &all) == 0);
  const int bound = CPU_COUNT(&all);
  const int machine = static_cast<int>(std::thread::hardware_concurrency());
  CHECK(dist::cpus_per_process(1) == std::min(bound, machine));
  CHECK(dist::cpus_per_process(machine) == 1);
  CHECK(dist::cpus_per_process(4 * machine) == 1);  // never 0
  // Bound to one CPU (as srun -c 1 or mpirun --bind-to core leave a process): one thread, whatever the share.
  int first = 0;
  while (!CPU_ISSET(first, &all)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);
  const int alone = dist::cpus_per_process(1);
  REQUIRE(sched_setaffinity(0, sizeof all, &all) == 0);
  CHECK(alone == 1);
}

}  // TEST_SUITE
