from taskctl.launch import main

main()
