/// ILGPU accelerators, created once per process (creating a context is the expensive part).
module PagedKv.Harness.Devices

open ILGPU
open ILGPU.Runtime
open ILGPU.Runtime.CPU
open ILGPU.Runtime.Cuda

let private context = lazy (Context.Create(fun b -> b.DefaultCPU().Cuda() |> ignore))

/// ILGPU's CPU accelerator (an emulator: always present).
let cpu: Lazy<Accelerator> = lazy (context.Value.CreateCPUAccelerator(0) :> Accelerator)

/// The first CUDA device, when there is one.
let cuda: Lazy<Accelerator option> =
    lazy
        (if context.Value.GetCudaDevices().Count > 0 then Some(context.Value.CreateCudaAccelerator(0) :> Accelerator)
         else None)

/// Accelerators by name: "cpu", "cuda" (None when no CUDA device exists).
let byName (name: string) =
    match name with
    | "cpu" -> Some cpu.Value
    | "cuda" -> cuda.Value
    | other -> failwithf "unknown accelerator '%s' (cpu or cuda)" other
