! Melissa client API for Fortran.
!
!   use melissa_api
!   call melissa_init('temperature', local_size, MPI_COMM_WORLD)   ! after MPI_Init
!   call melissa_send('temperature', values)                        ! real(8) or real(4) array
!   call melissa_finalize()                                         ! before MPI_Finalize
!
! The communicator is the ordinary integer handle of `use mpi`; with
! `use mpi_f08` pass comm%MPI_VAL. Every routine takes an optional `status`
! argument (MELISSA_OK or a MELISSA_ERR_* code); fatal errors end the program
! unless MELISSA_ON_ERROR=return (see docs/api.md). melissa_last_error()
! returns the message of the last error.
module melissa_api
  use iso_c_binding
  implicit none
  private

  integer, parameter, public :: MELISSA_OK = 0
  integer, parameter, public :: MELISSA_ERR_ENV = -1
  integer, parameter, public :: MELISSA_ERR_CONNECT = -2
  integer, parameter, public :: MELISSA_ERR_REFUSED = -3
  integer, parameter, public :: MELISSA_ERR_FIELD = -4
  integer, parameter, public :: MELISSA_ERR_ORDER = -5
  integer, parameter, public :: MELISSA_ERR_IO = -6
  integer, parameter, public :: MELISSA_ERR_ARG = -7

  public :: melissa_init, melissa_init_no_mpi, melissa_send, melissa_finalize
  public :: melissa_last_error, melissa_get_sim_id, melissa_get_attempt

  interface melissa_send
    module procedure melissa_send_real8, melissa_send_real4
  end interface melissa_send

  interface
    integer(c_int) function c_init_f(name, local_size, comm) bind(c, name='melissa_init_f')
      import :: c_char, c_size_t, c_int
      character(kind=c_char), dimension(*), intent(in) :: name
      integer(c_size_t), value :: local_size
      integer(c_int), value :: comm
    end function c_init_f

    integer(c_int) function c_init_no_mpi(name, size) bind(c, name='melissa_init_no_mpi')
      import :: c_char, c_size_t, c_int
      character(kind=c_char), dimension(*), intent(in) :: name
      integer(c_size_t), value :: size
    end function c_init_no_mpi

    integer(c_int) function c_send(name, values) bind(c, name='melissa_send')
      import :: c_char, c_double, c_int
      character(kind=c_char), dimension(*), intent(in) :: name
      real(c_double), dimension(*), intent(in) :: values
    end function c_send

    integer(c_int) function c_send_float(name, values) bind(c, name='melissa_send_float')
      import :: c_char, c_float, c_int
      character(kind=c_char), dimension(*), intent(in) :: name
      real(c_float), dimension(*), intent(in) :: values
    end function c_send_float

    integer(c_int) function c_finalize() bind(c, name='melissa_finalize')
      import :: c_int
    end function c_finalize

    type(c_ptr) function c_last_error() bind(c, name='melissa_last_error')
      import :: c_ptr
    end function c_last_error

    integer(c_int) function c_get_sim_id() bind(c, name='melissa_get_sim_id')
      import :: c_int
    end function c_get_sim_id

    integer(c_int) function c_get_attempt() bind(c, name='melissa_get_attempt')
      import :: c_int
    end function c_get_attempt

    integer(c_size_t) function c_strlen(s) bind(c, name='strlen')
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
    end function c_strlen
  end interface

contains

  ! Fortran strings carry their length; C wants a NUL. Trailing blanks (a name
  ! held in a fixed-length variable) are not part of the name.
  function c_string(s) result(c)
    character(len=*), intent(in) :: s
    character(kind=c_char, len=len_trim(s) + 1) :: c
    c = trim(s) // c_null_char
  end function c_string

  subroutine set_status(rc, status)
    integer(c_int), intent(in) :: rc
    integer, intent(out), optional :: status
    if (present(status)) status = int(rc)
  end subroutine set_status

  ! Collective over `comm`: this rank holds `local_size` values of the field.
  subroutine melissa_init(field_name, local_size, comm, status)
    character(len=*), intent(in) :: field_name
    integer, intent(in) :: local_size
    integer, intent(in) :: comm
    integer, intent(out), optional :: status
    call set_status(c_init_f(c_string(field_name), int(local_size, c_size_t), int(comm, c_int)), status)
  end subroutine melissa_init

  ! A solver without MPI: this process owns all `size` values.
  subroutine melissa_init_no_mpi(field_name, size, status)
    character(len=*), intent(in) :: field_name
    integer, intent(in) :: size
    integer, intent(out), optional :: status
    call set_status(c_init_no_mpi(c_string(field_name), int(size, c_size_t)), status)
  end subroutine melissa_init_no_mpi

  subroutine melissa_send_real8(field_name, values, status)
    character(len=*), intent(in) :: field_name
    real(c_double), dimension(*), intent(in) :: values
    integer, intent(out), optional :: status
    call set_status(c_send(c_string(field_name), values), status)
  end subroutine melissa_send_real8

  subroutine melissa_send_real4(field_name, values, status)
    character(len=*), intent(in) :: field_name
    real(c_float), dimension(*), intent(in) :: values
    integer, intent(out), optional :: status
    call set_status(c_send_float(c_string(field_name), values), status)
  end subroutine melissa_send_real4

  subroutine melissa_finalize(status)
    integer, intent(out), optional :: status
    call set_status(c_finalize(), status)
  end subroutine melissa_finalize

  function melissa_last_error() result(message)
    character(len=:), allocatable :: message
    type(c_ptr) :: p
    character(kind=c_char), pointer :: chars(:)
    integer :: n, i
    p = c_last_error()
    n = int(c_strlen(p))
    allocate(character(len=n) :: message)
    if (n == 0) return
    call c_f_pointer(p, chars, [n])
    do i = 1, n
      message(i:i) = chars(i)
    end do
  end function melissa_last_error

  integer function melissa_get_sim_id()
    melissa_get_sim_id = int(c_get_sim_id())
  end function melissa_get_sim_id

  integer function melissa_get_attempt()
    melissa_get_attempt = int(c_get_attempt())
  end function melissa_get_attempt

end module melissa_api
