"""Dashboard widgets. Each one renders what it is given; none reads the engine or the bus."""
