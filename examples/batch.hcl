# A one-shot batch job that runs a short command on any client in dc1.
job "report" {
  datacenters = ["dc1"]
  type        = "batch"
  priority    = 70

  meta {
    owner = "ops"
  }

  group "report" {
    count = 1

    reschedule {
      attempts  = 2
      interval  = "1h"
      delay     = "30s"
      unlimited = false
    }

    task "generate" {
      driver = "raw_exec"

      config {
        command = "/bin/echo"
        args    = ["report", "done"]
      }

      resources {
        cpu    = 50
        memory = 32
      }

      kill_timeout = "20s"
    }
  }
}
