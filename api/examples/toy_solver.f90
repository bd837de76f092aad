! A toy "solver" instrumented with the Melissa Fortran API: the same travelling
! pulse as toy_solver.c (see there), block-distributed over the MPI ranks.
!
!   mpirun -n 2 ./toy_solver_f [steps [size [field]]]
program toy_solver
  use mpi
  use melissa_api
  implicit none
  integer :: steps = 5, size = 1000
  character(len=64) :: field = 'temperature'
  character(len=64) :: arg
  integer :: ierr, rank, ranks, first, last, local_size, t, i, sim_id, status
  real(8), allocatable :: u(:)

  if (command_argument_count() >= 1) then
    call get_command_argument(1, arg)
    read (arg, *) steps
  end if
  if (command_argument_count() >= 2) then
    call get_command_argument(2, arg)
    read (arg, *) size
  end if
  if (command_argument_count() >= 3) call get_command_argument(3, field)

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, ranks, ierr)
  ! Block distribution, 0-based global indices [first, last). 64-bit products
  ! so that size * rank cannot overflow.
  first = int(int(size, 8) * rank / ranks)
  last = int(int(size, 8) * (rank + 1) / ranks)
  local_size = last - first
  allocate(u(max(local_size, 1)))

  call melissa_init(trim(field), local_size, MPI_COMM_WORLD, status)
  if (status /= MELISSA_OK) call MPI_Abort(MPI_COMM_WORLD, 1, ierr)
  sim_id = melissa_get_sim_id()

  do t = 0, steps - 1
    do i = first, last - 1
      u(i - first + 1) = pulse(i, size, t, steps, sim_id)
    end do
    call melissa_send(trim(field), u, status)
    if (status /= MELISSA_OK) call MPI_Abort(MPI_COMM_WORLD, 1, ierr)
  end do

  call melissa_finalize(status)
  if (status /= MELISSA_OK) call MPI_Abort(MPI_COMM_WORLD, 1, ierr)
  if (rank == 0) print '(a,i0,a,i0,a,i0,a)', 'toy_solver_f: simulation ', sim_id, ' sent ', &
      steps, ' steps of ', size, ' values'
  call MPI_Finalize(ierr)

contains

  ! Only + - * /, in the order of toy_solver.c, so that tests recompute it exactly.
  real(8) function pulse(i, size, t, steps, sim_id)
    integer, intent(in) :: i, size, t, steps, sim_id
    real(8) :: x, center, d
    x = dble(i) / dble(size - 1)
    center = dble(t) / dble(steps)
    d = (x - center) * 10.0d0
    pulse = (1.0d0 + 0.5d0 * dble(sim_id)) / (1.0d0 + d * d)
  end function pulse

end program toy_solver
