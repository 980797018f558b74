ATEN = ()
