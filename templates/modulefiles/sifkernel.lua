-- Lmod modulefile for sifkernel. Install as modulefiles/sifkernel/<version>.lua
help([[sifkernel: containerized Jupyter kernels on Slurm.
  sifkernel kernel add NAME --image IMAGE.sif   make a kernel
  sifkernel kernel check                        check your kernels
  sifkernel idev                                idev with your kernels ready]])
whatis("Name: sifkernel")
whatis("Description: containerized Jupyter kernels that work on Slurm")
local root = "/opt/apps/sifkernel/" .. myModuleVersion()
prepend_path("PATH", pathJoin(root, "bin"))
-- The site config; remove to use /etc/sifkernel/config.toml.
setenv("SIFKERNEL_CONFIG", pathJoin(root, "etc", "config.toml"))
-- sifkernel finds Apptainer itself; loading the module helps kernel add.
depends_on("tacc-apptainer")
